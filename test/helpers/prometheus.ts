import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports.ts";

/** A scrape target: `host:port`, or with its own labels and metrics path. */
export type PrometheusTarget = string | { target: string; labels?: Record<string, string>; metricsPath?: string };

export interface PrometheusOptions {
  targets: PrometheusTarget[];
  /** Scrape (and timeout) interval, seconds; default 1. */
  scrapeIntervalS?: number;
  /** Labels added to every target (e.g. a `host` label per test setup). */
  extraLabels?: Record<string, string>;
  /** job_name of the scrape config; default "fleetplan". */
  job?: string;
}

export interface PrometheusServer {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** Resolve once every target has been scraped successfully. */
  waitForTargetsUp(ms?: number): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s) and remove the temp dir. */
  stop(): Promise<void>;
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));

const configOf = (opts: PrometheusOptions) => {
  const interval = `${opts.scrapeIntervalS ?? 1}s`;
  // JSON is YAML: no YAML writer needed.
  return JSON.stringify({
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [
      {
        job_name: opts.job ?? "fleetplan",
        static_configs: opts.targets.map((t) => {
          const { target, labels = {}, metricsPath } = typeof t === "string" ? { target: t } : t;
          return {
            targets: [target],
            labels: { ...opts.extraLabels, ...labels, ...(metricsPath ? { __metrics_path__: metricsPath } : {}) },
          };
        }),
      },
    ],
  });
};

const httpOk = async (url: string): Promise<boolean> => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
};

/** A real Prometheus (Debian's /usr/bin/prometheus) on a random loopback port, storage in a temp dir. */
export const startPrometheus = async (opts: PrometheusOptions): Promise<PrometheusServer> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-prom-"));
  const config = join(dir, "prometheus.yml");
  writeFileSync(config, configOf(opts));
  let child: ChildProcess | undefined;
  let log = "";
  const stop = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child?.kill("SIGKILL"), 5000);
      await exited(child);
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A free port can be taken between probe and bind: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    log = "";
    child = spawn(
      "prometheus",
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    child.stderr!.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    const url = `http://127.0.0.1:${port}`;
    const proc = child;
    // Should the test process die without stop(), do not leave Prometheus behind.
    const reap = () => proc.kill("SIGKILL");
    process.once("exit", reap);
    proc.once("exit", () => process.off("exit", reap));
    try {
      await waitFor(async () => proc.exitCode !== null || (await httpOk(`${url}/-/ready`)), 20_000, `prometheus on ${port}`);
    } catch (error) {
      await stop();
      throw error;
    }
    if (proc.exitCode !== null) continue;
    const targetsUp = async () => {
      const res = await fetch(`${url}/api/v1/targets?state=active`);
      const doc = (await res.json()) as { data: { activeTargets: { health: string }[] } };
      return doc.data.activeTargets.length === opts.targets.length && doc.data.activeTargets.every((t) => t.health === "up");
    };
    return { url, stop, waitForTargetsUp: (ms = 15_000) => waitFor(targetsUp, ms, "every Prometheus target up") };
  }
  await stop();
  throw new Error(`prometheus did not start: ${log}`);
};
