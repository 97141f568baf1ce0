import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { dirname, join } from "node:path";
import { PACKAGE_ROOT } from "../../shared/version.ts";

// Processes of the demo fleet: a nats-server and real `fleetplan-agent run` processes,
// all on loopback, all state inside one directory.

// The bins, not dist/: the same paths whether this runs from the sources (tests) or from dist/ (demo).
export const AGENT_BIN = join(PACKAGE_ROOT, "agent", "bin.mjs");
export const CLI_BIN = join(PACKAGE_ROOT, "coordinator", "bin.mjs");

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

/** Wait until something accepts connections on the port. */
export const waitListening = async (port: number, ms: number, what: string): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await listening(port))) {
    if (Date.now() > deadline) throw new Error(`${what} did not start listening on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** Every process the demo starts, so that all of them stop, whatever happens. */
export const createProcessGroup = () => {
  const children = new Set<ChildProcess>();
  return {
    spawn(command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
      mkdirSync(dirname(logFile), { recursive: true });
      writeFileSync(logFile, "");
      const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], env });
      child.stderr!.on("data", (chunk: Buffer) => writeFileSync(logFile, chunk, { flag: "a" }));
      children.add(child);
      child.once("exit", () => children.delete(child));
      return child;
    },
    async stopAll(): Promise<void> {
      const exits = [...children].map(
        (c) =>
          new Promise<void>((resolve) => {
            c.once("exit", () => resolve());
            c.kill("SIGTERM");
            setTimeout(() => c.kill("SIGKILL"), 5_000).unref();
          }),
      );
      await Promise.all(exits);
    },
  };
};
