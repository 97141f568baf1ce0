// Many agents in one process against one nats-server, receiving pushes in a row as fast as they
// can be sealed and put. Afterwards every ledger is checked: the last id applied, every earlier
// id applied once or superseded, none missed, none twice, none out of order.
// A first, untimed push (id 1) is the readiness barrier: an agent reads its key's latest value and
// then watches from the next revision, so once it has seen id 1 it can miss nothing after it.
// Before that, a value replaced before the agent first connected is legitimately never seen.
import { setTimeout as sleep } from "node:timers/promises";
import type { Agent } from "../agent/agent.ts";
import { createNode, createWorld, sealFor, startInProcess } from "../test/helpers/fleet.ts";
import type { Node } from "../test/helpers/fleet.ts";
import { startNats } from "../test/helpers/nats.ts";
import type { NatsServer } from "../test/helpers/nats.ts";
import { allRuns, markerIds, markerPlan, openRawBucket } from "../test/reliability/support.ts";

export interface LoadOptions {
  agents: number;
  pushes: number;
  /** Give up waiting for convergence after this long. */
  timeoutMs: number;
  /** Called with each figure as it is measured (one JSON line each in the CLI). */
  report?: (figure: Record<string, unknown>) => void;
}

export interface LoadResult {
  agents: number;
  pushes: number;
  start_ms: number;
  put_ms: number;
  converge_ms: number;
  runs_succeeded: number;
  runs_superseded: number;
  /** One line per agent whose ledger breaks a rule; empty when all is well. */
  problems: string[];
}

/** Everything wrong with one agent's record of ids 1..last. */
const checkAgent = (agent: Agent, node: Node, last: number): string[] => {
  const runs = allRuns(agent.ledger);
  const ids = runs.map((r) => r.id);
  const problems: string[] = [];
  const want = Array.from({ length: last }, (_, i) => i + 1);
  if (ids.join() !== want.join()) problems.push(`runs for ids [${ids}], want each of 1..${last} once, in order`);
  const bad = runs.filter((r) => r.state !== "succeeded" && r.state !== "superseded");
  if (bad.length > 0) problems.push(`runs neither applied nor superseded: ${bad.map((r) => `${r.id}:${r.state}`)}`);
  if (runs.at(-1)?.state !== "succeeded") problems.push(`last id ${last} not applied (${runs.at(-1)?.state})`);
  const applied = runs.filter((r) => r.state === "succeeded").map((r) => r.id);
  if (markerIds(node).join() !== applied.join()) problems.push(`executions [${markerIds(node)}] differ from applied runs [${applied}]`);
  return problems.map((p) => `${node.host}: ${p}`);
};

const waitUntil = async (done: () => boolean, deadline: number): Promise<void> => {
  while (!done() && Date.now() < deadline) await sleep(50);
};

/** Start a nats-server and `agents` in-process agents, push `pushes` times, verify, clean up. */
export const runLoad = async (opts: LoadOptions): Promise<LoadResult> => {
  const report = opts.report ?? (() => {});
  const nats: NatsServer = await startNats();
  const world = await createWorld("fleetplan-load-");
  const agents: Agent[] = [];
  try {
    let t0 = performance.now();
    const nodes = await Promise.all(Array.from({ length: opts.agents }, (_, i) => createNode(world, `load-${i}`, nats.url, { metricsListen: "off" })));
    agents.push(...(await Promise.all(nodes.map((n) => startInProcess(n)))));
    const start_ms = Math.round(performance.now() - t0);
    report({ phase: "start", agents: opts.agents, ms: start_ms });

    const kv = await openRawBucket(nats.url);
    const pushAll = (id: number) => Promise.all(nodes.map((n) => kv.put(n.host, sealFor(world, n, id, markerPlan(n, `push ${id}`)))));
    const last = opts.pushes + 1;
    try {
      await pushAll(1);
      await waitUntil(() => agents.every((a) => a.ledger.highWaterMark().id >= 1), Date.now() + opts.timeoutMs);
      t0 = performance.now();
      for (let id = 2; id <= last; id++) await pushAll(id);
    } finally {
      await kv.close();
    }
    const put_ms = Math.round(performance.now() - t0);
    const puts = opts.agents * opts.pushes;
    report({ phase: "put", puts, ms: put_ms, puts_per_s: Math.round((puts / put_ms) * 1000) });

    await waitUntil(() => agents.every((a) => a.ledger.lastSuccess()?.id === last), Date.now() + opts.timeoutMs);
    const converge_ms = Math.round(performance.now() - t0);
    await Promise.all(agents.map((a) => a.idle()));
    const runs = agents.flatMap((a) => allRuns(a.ledger));
    const result: LoadResult = {
      agents: opts.agents, pushes: opts.pushes, start_ms, put_ms, converge_ms,
      runs_succeeded: runs.filter((r) => r.state === "succeeded").length,
      runs_superseded: runs.filter((r) => r.state === "superseded").length,
      problems: agents.flatMap((a, i) => checkAgent(a, nodes[i]!, last)),
    };
    report({ phase: "converge", ms: converge_ms, runs_succeeded: result.runs_succeeded, runs_superseded: result.runs_superseded, problems: result.problems.length });
    return result;
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await nats.stop();
    world.cleanup();
  }
};
