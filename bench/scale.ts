// Fleet-scale transport (issue 11 item 5): one real nats-server (the Debian one) and N real agent
// feeds (agent/store/nats-feed.ts without execution) in --procs worker processes. For each N:
// consumers on the server (/jsz), idle server messages/s with N agents connected (/varz), a burst
// of N puts (one per host) with put-to-delivery p50/p99 and the time from the last put to the
// last delivery, and the server's RSS. One JSON line per figure.
// Idle traffic is measured after --settle seconds, once every feed's ~60 s safety-net re-read is
// in its steady state (the first comes 30-90 s after start), over --idle seconds.
// Run: npx tsx bench/scale.ts [--feeds 1000,10000] [--procs 4] [--settle 90] [--idle 60]
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { ensureStoreLayout } from "../coordinator/store/nats-layout.ts";
import { natsConnectOptions } from "../shared/nats-options.ts";
import { normalizeStoreConfig } from "../shared/store-config.ts";
import { kvSubject } from "../shared/store-layout.ts";
import { freePort, waitListening } from "../test/helpers/ports.ts";

const { values } = parseArgs({
  options: {
    feeds: { type: "string", default: "1000,10000" },
    procs: { type: "string", default: "4" },
    settle: { type: "string", default: "90" },
    idle: { type: "string", default: "60" },
  },
});
const sizes = values.feeds!.split(",").map(Number);
const procs = Number(values.procs);
const idleS = Number(values.idle);
const settleS = Number(values.settle);
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !(procs >= 1) || !(idleS > 0) || !(settleS >= 0)) {
  console.error("usage: bench/scale.ts [--feeds 1000,10000] [--procs 4] [--settle 90] [--idle 60]");
  process.exit(2);
}
const DEADLINE_MS = 120_000;
const emit = (figure: Record<string, unknown>) => console.log(JSON.stringify({ bench: "scale", ...figure }));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

const monitor = async (port: number, path: string) =>
  (await fetch(`http://127.0.0.1:${port}${path}`)).json() as Promise<Record<string, number>>;

const runSize = async (n: number): Promise<void> => {
  const [port, mport] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-scale-"));
  const server = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-m", String(mport), "-sd", dir], { stdio: "ignore" });
  const workers: ChildProcess[] = [];
  try {
    await waitListening(port, 10_000, "nats-server");
    const url = `nats://127.0.0.1:${port}`;
    const config = normalizeStoreConfig({ url }, [], {});
    const nc = await connect(natsConnectOptions(config, { name: "scale-bench", forever: false }));
    await ensureStoreLayout(nc, config, { update: true });

    const deliveredAt = new Map<number, number>();
    let ready = 0;
    const per = Math.ceil(n / procs);
    const started = Date.now();
    for (let p = 0; p < procs && p * per < n; p++) {
      const w = spawn(
        "node",
        [
          "--import",
          "tsx",
          join(import.meta.dirname, "scale-worker.ts"),
          "--url",
          url,
          "--start",
          String(p * per),
          "--count",
          String(Math.min(per, n - p * per)),
        ],
        {
          stdio: ["pipe", "pipe", "inherit"],
        },
      );
      workers.push(w);
      createInterface({ input: w.stdout! }).on("line", (line) => {
        const m = JSON.parse(line) as { ready?: number; h?: number; t?: number };
        if (m.ready !== undefined) ready += m.ready;
        else deliveredAt.set(m.h!, m.t!);
      });
    }
    while (ready < n) {
      if (Date.now() - started > DEADLINE_MS) throw new Error(`only ${ready} of ${n} feeds connected within ${DEADLINE_MS / 1000} s`);
      await sleep(100);
    }
    emit({ feeds: n, procs: workers.length, figure: "connect_s", value: (Date.now() - started) / 1000 });

    const jsz = await monitor(mport, "/jsz?accounts=true&consumers=true");
    emit({ feeds: n, figure: "server_consumers", value: jsz.consumers ?? 0 });

    // Idle: every agent connected, nothing pushed; messages the server received and sent.
    await sleep(settleS * 1000);
    const before = await monitor(mport, "/varz");
    await sleep(idleS * 1000);
    const after = await monitor(mport, "/varz");
    const rate = (key: string) => Math.round(((after[key]! - before[key]!) / idleS) * 10) / 10;
    emit({ feeds: n, figure: "idle_server_in_msgs_per_s", value: rate("in_msgs") });
    emit({ feeds: n, figure: "idle_server_out_msgs_per_s", value: rate("out_msgs") });

    // A burst of N puts (one per host, pipelined), as a push to the whole fleet writes them.
    const payload = new Uint8Array(1024).fill(7);
    const putAt = new Map<number, number>();
    const burst = Date.now();
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      putAt.set(i, Date.now());
      acks.push(nc.request(kvSubject(config.planBucket, `scale-${i}`), payload, { timeout: 30_000 }));
      if (acks.length >= 1_000) await Promise.all(acks.splice(0));
    }
    await Promise.all(acks);
    const lastPut = Date.now();
    emit({ feeds: n, figure: "burst_puts_per_s", value: Math.round(n / ((lastPut - burst) / 1000)) });
    while (deliveredAt.size < n && Date.now() - lastPut < DEADLINE_MS) await sleep(20);
    const latencies = [...deliveredAt].map(([h, t]) => t - putAt.get(h)!).sort((a, b) => a - b);
    emit({ feeds: n, figure: "delivered", value: deliveredAt.size });
    emit({ feeds: n, figure: "put_to_delivery_p50_ms", value: pct(latencies, 0.5) });
    emit({ feeds: n, figure: "put_to_delivery_p99_ms", value: pct(latencies, 0.99) });
    emit({ feeds: n, figure: "last_delivery_after_last_put_ms", value: Math.max(...deliveredAt.values()) - lastPut });
    const varz = await monitor(mport, "/varz");
    emit({ feeds: n, figure: "server_rss_mb", value: Math.round(varz.mem! / 1024 / 1024) });
    emit({ feeds: n, figure: "server_connections", value: varz.connections! });
    await nc.close();
    if (deliveredAt.size < n) process.exitCode = 1;
  } finally {
    for (const w of workers) w.stdin?.end();
    await Promise.race([Promise.all(workers.map((w) => new Promise((r) => w.once("exit", r)))), sleep(20_000)]);
    for (const w of workers) w.kill("SIGKILL");
    server.kill("SIGTERM");
    await Promise.race([new Promise((r) => server.once("exit", r)), sleep(10_000)]);
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
};

for (const n of sizes) await runSize(n);
