// Agent integration tests against a real nats-server: the test's own connection to the plan
// and status buckets, as the coordinator would use them (puts with a timeout and a retry: a
// put during an outage hangs, then throws), and a per-file scope that cleans up everything.
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Agent } from "../../agent/agent.ts";
import type { AgentConfigInput } from "../../agent/config.ts";
import { parseStatusRecord } from "../../shared/status.ts";
import type { AgentStatus } from "../../shared/types.ts";
import { createNode, createWorld, metricValue, startAgentProcess, startInProcess, waitFor } from "./fleet.ts";
import type { AgentProcess, Node } from "./fleet.ts";
import { startNats } from "./nats.ts";
import { initStoreLayout } from "./store-layout.ts";

const statusOf = (value: Uint8Array): AgentStatus | null => {
  const parsed = parseStatusRecord(value);
  return parsed.ok ? parsed.status : null;
};

/** Connect to a test nats-server's plan and status buckets; `close()` drains the connection. */
export const openKv = async (url: string) => {
  await initStoreLayout(url);
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200, timeout: 2_000 });
  const kvm = new Kvm(nc);
  const plans = await kvm.create("fleetplan-plans", { history: 5, timeout: 2_000 });
  const statuses = await kvm.create("fleetplan-status", { history: 1, timeout: 2_000 });
  return {
    /** Put an envelope under the host's key, retrying until it is stored (or `ms` pass); returns the revision. */
    put: async (host: string, envelope: Uint8Array, ms = 15_000): Promise<number> => {
      const deadline = Date.now() + ms;
      for (;;) {
        try {
          return await plans.put(host, envelope, { timeout: 1_000 });
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(100);
        }
      }
    },
    /** The host's status value as stored (raw text, to search for leaks) and its status (signature not checked here). */
    status: async (host: string): Promise<{ raw: string; status: AgentStatus | null } | null> => {
      const entry = await statuses.get(host);
      return entry && entry.operation === "PUT" ? { raw: new TextDecoder().decode(entry.value), status: statusOf(entry.value) } : null;
    },
    close: async (): Promise<void> => {
      await nc.drain().catch(() => nc.close());
    },
  };
};

/**
 * One nats-server, one world (admin key, trust) and one KV connection for a test file.
 * Every agent started through it is stopped by `cleanup()`, whatever the tests did.
 */
export const startKvScope = async () => {
  const nats = await startNats();
  const world = await createWorld();
  const kv = await openKv(nats.url);
  const stops: (() => Promise<unknown>)[] = [];
  return {
    nats,
    world,
    kv,
    node: (host: string, overrides: AgentConfigInput = {}): Promise<Node> => createNode(world, host, nats.url, overrides),
    /** An in-process agent with its NATS feed; stopping it twice is harmless. */
    agent: async (node: Node): Promise<Agent> => {
      const agent = await startInProcess(node);
      let stopped: Promise<void> | undefined;
      const stop = () => (stopped ??= agent.stop());
      stops.push(stop);
      return { ...agent, stop };
    },
    /** A real `fleetplan-agent run` process, SIGKILLed at cleanup if still running. */
    process: async (node: Node, env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> => {
      const proc = await startAgentProcess(node, env);
      stops.push(async () => {
        if (proc.child.exitCode === null && proc.child.signalCode === null) await proc.kill9();
      });
      return proc;
    },
    cleanup: async (): Promise<void> => {
      for (const stop of stops.reverse()) await stop().catch(() => {});
      await kv.close();
      await nats.stop();
      world.cleanup();
    },
  };
};

// The marker file plans append to, one line per step that ran.
const markerPath = (node: Node): string => join(node.root, "marker");

/** A step that appends `label` to the node's marker file. */
export const appendMarker = (node: Node, label: string): string => `echo ${label} >> ${markerPath(node)}`;

/** Lines of the node's marker file (none if it does not exist). */
export const markerLines = (node: Node): string[] =>
  existsSync(markerPath(node)) ? readFileSync(markerPath(node), "utf8").split("\n").filter(Boolean) : [];

/** Poll one /metrics series until `check` holds for its value. */
export const waitMetric = (node: Node, series: string, check: (v: number | null) => boolean, ms = 10_000): Promise<void> =>
  waitFor(async () => check(await metricValue(node, series).catch(() => null)), ms, `${series} on ${node.host}`);
