import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AGENT_BIN, CLI_BIN } from "./fleet.ts";
import type { Node, World } from "./fleet.ts";

export interface CliResult {
  /** null when killed (see timedOut) */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Kill the child after this long (default 60 s): a hanging command fails its test, not the suite. */
  timeoutMs?: number;
  /** Script to run instead of the coordinator CLI (e.g. AGENT_BIN). */
  bin?: string;
}

/** Run `node BIN ARGS` as a child process; resolves (never rejects) with its exit code and output. */
export const runCli = (args: string[], opts: RunOptions = {}): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn("node", [opts.bin ?? CLI_BIN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...opts.env },
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });

/** Every line of stdout parsed as JSON (push --json prints one object per line). */
export const jsonLines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** The last JSON line of stdout: push's summary, or a command's single JSON answer. */
export const lastJson = <T = Record<string, unknown>>(result: CliResult): T => {
  const lines = jsonLines(result.stdout);
  if (lines.length === 0) throw new Error(`no JSON on stdout (exit ${result.code}): ${result.stderr}`);
  return lines[lines.length - 1] as T;
};

export type Fleetplan = ReturnType<typeof createCli>;

/**
 * `fleetplan` bound to one coordinator: its database under the world dir, the store URL and
 * the world's admin key, passed as FLEETPLAN_DB / FLEETPLAN_STORE / FLEETPLAN_ADMIN_KEY.
 */
export const createCli = (world: World, store: string, name = "coordinator") => {
  const env: NodeJS.ProcessEnv = {
    FLEETPLAN_DB: join(world.dir, name, "fleetplan.db"),
    FLEETPLAN_STORE: store,
    FLEETPLAN_ADMIN_KEY: world.adminKeyPath,
  };
  const run = (args: string[], opts: RunOptions = {}) => runCli(args, { ...opts, env: { ...env, ...opts.env } });
  /** Run and require exit code `code` (default 0); the result for further checks. */
  const expect = async (args: string[], code = 0, opts: RunOptions = {}): Promise<CliResult> => {
    const result = await run(args, opts);
    if (result.code !== code)
      throw new Error(`fleetplan ${args.join(" ")}: exit ${result.code}, expected ${code}\n${result.stdout}\n${result.stderr}`);
    return result;
  };
  return { env, dbPath: env.FLEETPLAN_DB!, run, expect };
};

/** `init` the coordinator and `server import` the nodes with their node keys and metrics URLs. */
export const initWithServers = async (cli: Fleetplan, nodes: Node[]): Promise<void> => {
  await cli.expect(["init", "--json"]);
  const file = join(cli.env.FLEETPLAN_DB!, "..", "inventory.json");
  writeFileSync(
    file,
    JSON.stringify(nodes.map((n) => ({ host: n.host, node_key: n.nodePubPath, metrics: `http://127.0.0.1:${n.metricsPort}/metrics` }))),
  );
  await cli.expect(["server", "import", file, "--json"]);
};

export { AGENT_BIN, CLI_BIN };
