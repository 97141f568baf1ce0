import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { freePort, waitListening } from "./ports.ts";

export interface NatsServer {
  url: string;
  port: number;
  /** Graceful stop and cleanup of the storage dir. */
  stop(): Promise<void>;
  /** kill -9, keeping the storage dir for restart(). */
  kill9(): Promise<void>;
  /** Start again on the same port with the same storage. */
  restart(): Promise<void>;
  /** Re-read the configuration file (SIGHUP), as `nats-server --signal reload` does. */
  reload(): void;
  /** The running server's process id (benches read its CPU time). */
  pid(): number;
}

// The child is unref'd while it runs; waiting for its exit must hold the event loop open again.
const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.ref();
    child.once("exit", () => resolve());
  });

// A main config in `dir`: JetStream stored there, `configFile` included (by a path relative to it).
const mainConfig = (dir: string, configFile: string): string => {
  const path = join(dir, "main.conf");
  writeFileSync(path, `jetstream { store_dir: ${JSON.stringify(dir)} }\ninclude ${JSON.stringify(relative(dir, resolve(configFile)))}\n`);
  return path;
};

/**
 * A real nats-server with JetStream on a random loopback port; extra args e.g. cluster routes.
 * `configFile` (e.g. the nats-server.conf of `fleetplan store credentials`) is included from a main
 * config that enables JetStream, as an operator would: with `-js`/`-sd` on the command line,
 * nats-server 2.9.10 refuses a reload (or turns JetStream off), and reload() must work.
 */
export const startNats = async (
  opts: { port?: number; extraArgs?: string[]; name?: string; configFile?: string } = {},
): Promise<NatsServer> => {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-nats-"));
  let child: ChildProcess;
  const start = async () => {
    const jetstream = opts.configFile ? ["-c", mainConfig(dir, opts.configFile)] : ["-js", "-sd", dir];
    const args = [...jetstream, "-a", "127.0.0.1", "-p", String(port), ...(opts.name ? ["-n", opts.name] : []), ...(opts.extraArgs ?? [])];
    child = spawn("nats-server", args, { stdio: "ignore" });
    child.unref();
    await waitListening(port, 10_000, `nats-server on ${port}`);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
    kill9: async () => {
      child.kill("SIGKILL");
      await exited(child);
    },
    restart: start,
    reload: () => void child.kill("SIGHUP"),
    pid: () => child.pid!,
  };
};
