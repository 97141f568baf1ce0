import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAgent } from "../../agent/agent.ts";
import type { Agent, AgentDeps } from "../../agent/agent.ts";
import { normalizeAgentConfig } from "../../agent/config.ts";
import type { AgentConfig, AgentConfigInput } from "../../agent/config.ts";
import { createFeed } from "../../agent/store/select.ts";
import { sealEnvelope } from "../../shared/envelope.ts";
import { writeNewKey, loadAdminKey, loadNodeKey } from "../../shared/key-files.ts";
import { formatTrust, planFromScript } from "../../shared/mod.ts";
import { silentLogger } from "../../shared/log.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AdminKeyPair, NodeKeyPair, Plan } from "../../shared/types.ts";
import { AGENT_BIN, CLI_BIN } from "../../coordinator/demo/fleet.ts";
import { freePort, waitFor, waitListening } from "./ports.ts";
import { initStoreLayout } from "./store-layout.ts";

export { AGENT_BIN, CLI_BIN };

/** A temp directory with an admin key and a trust file; `cleanup()` removes it. */
export const createWorld = async (prefix = "fleetplan-test-") => {
  await sodiumReady();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeNewKey(join(dir, "admin"), "admin");
  const admin: AdminKeyPair = loadAdminKey(join(dir, "admin", "admin.key"));
  const trustPath = join(dir, "trust");
  writeFileSync(trustPath, formatTrust([admin.publicKey]), { mode: 0o644 });
  return {
    dir,
    admin,
    adminKeyPath: join(dir, "admin", "admin.key"),
    trustPath,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
};
export type World = Awaited<ReturnType<typeof createWorld>>;

export interface Node {
  host: string;
  home: string;
  root: string;
  keys: NodeKeyPair;
  nodeKeyPath: string;
  nodePubPath: string;
  configPath: string;
  config: AgentConfig;
  metricsPort: number;
}

/**
 * One node's files: node key, agent.json with state/log dirs and a file root under the
 * world dir, a free metrics port. `overrides` go into agent.json.
 */
export const createNode = async (world: World, host: string, store: string, overrides: AgentConfigInput = {}): Promise<Node> => {
  const home = join(world.dir, "hosts", host);
  const root = join(home, "root");
  mkdirSync(root, { recursive: true });
  writeNewKey(join(home, "keys"), "node");
  const metricsPort = await freePort();
  const input: AgentConfigInput = {
    hostname: host,
    store,
    nodeKey: join(home, "keys", "node.key"),
    trust: world.trustPath,
    stateDir: join(home, "state"),
    logDir: join(home, "log"),
    metricsListen: `127.0.0.1:${metricsPort}`,
    fileRoots: [root],
    stopGrace: "2s",
    ...overrides,
  };
  const configPath = join(home, "agent.json");
  writeFileSync(configPath, JSON.stringify(input, null, 2));
  return {
    host,
    home,
    root,
    keys: loadNodeKey(input.nodeKey!),
    nodeKeyPath: input.nodeKey!,
    nodePubPath: join(home, "keys", "node.pub"),
    configPath,
    config: normalizeAgentConfig([input], {}),
    metricsPort,
  };
};

// Agents never create buckets: the first agent started against a store creates the layout, as
// `fleetplan store init` would (once per server URL; a test that deletes a bucket re-inits itself).
// No server listening (an agent started against no store) is not an error here.
const layouts = new Map<string, Promise<unknown>>();
const ensureLayout = (node: Node): Promise<unknown> => {
  const key = node.config.store.servers.join(",");
  let ready = layouts.get(key);
  if (!ready) {
    ready = initStoreLayout(node.config.store, { skipUnreachable: true }).then(
      (outcomes) => outcomes.length > 0 || layouts.delete(key), // skipped: try again next time
      (error: unknown) => {
        layouts.delete(key);
        throw error;
      },
    );
    layouts.set(key, ready);
  }
  return ready;
};

/** An agent in this process (with its store feed unless `feed: null`), the store's layout created first. */
export const startInProcess = async (node: Node, deps: AgentDeps = {}): Promise<Agent> => {
  if (deps.feed !== null) await ensureLayout(node);
  return createAgent(node.config, { logger: silentLogger, feed: createFeed(node.config.store, silentLogger), ...deps });
};

export interface AgentProcess {
  child: ChildProcess;
  /** stderr so far (JSON log lines) */
  log(): string;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

/** A real `fleetplan-agent run` process; resolves once its metrics endpoint listens. */
export const startAgentProcess = async (node: Node, env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> => {
  await ensureLayout(node);
  const child = spawn("node", [AGENT_BIN, "run", "--config", node.configPath], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let log = "";
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await Promise.race([
    waitListening(node.metricsPort, 20_000, `agent ${node.host}`),
    exited.then((code) => {
      throw new Error(`agent ${node.host} exited ${code}: ${log}`);
    }),
  ]);
  return {
    child,
    log: () => log,
    stop: async () => {
      child.kill("SIGTERM");
      return exited;
    },
    kill9: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
};

/** Seal a plan (or a script) for a node with the world's admin key. */
export const sealFor = (
  world: World,
  node: Node,
  id: number,
  plan: Plan | string,
  opts: { expires?: number; issued?: number } = {},
): Uint8Array =>
  sealEnvelope(typeof plan === "string" ? planFromScript(plan) : plan, {
    id,
    target: node.host,
    nodePublicKey: node.keys.publicKey,
    signers: [world.admin],
    expires: opts.expires ?? Date.now() + 3_600_000,
    ...(opts.issued !== undefined && { issued: opts.issued }),
  });

/** GET an agent's /metrics and return the value of one series (first match), or null. */
export const metricValue = async (node: Node, series: string): Promise<number | null> => {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : null;
};

export { waitFor };
