import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
}

// The child is unref'd while it runs; waiting for its exit must hold the event loop open again.
const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.ref();
    child.once("exit", () => resolve());
  });

/** A real nats-server with JetStream on a random loopback port; extra args e.g. cluster routes. */
export const startNats = async (opts: { port?: number; extraArgs?: string[]; name?: string } = {}): Promise<NatsServer> => {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-nats-"));
  let child: ChildProcess;
  const start = async () => {
    child = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir, ...(opts.name ? ["-n", opts.name] : []), ...(opts.extraArgs ?? [])], { stdio: "ignore" });
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
  };
};
