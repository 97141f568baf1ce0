// Many agents in one process against one nats-server, receiving pushes in a row as fast as they
// can be sealed and put. Agents are newest-wins: one that receives several envelopes while busy
// runs only the newest next, and the older ones are superseded (or never seen: a value replaced
// before the agent read it). So every agent's ledger is checked for: the ids it ran strictly
// increasing (never an older id after a newer one, none twice), the last pushed id applied.
// A first push (id 1) is the readiness barrier: timing starts once every agent has accepted it.
// Every wait is bounded by one deadline; cleanup gets CLEANUP_MS more and always runs.
import { setTimeout as sleep } from "node:timers/promises";
import type { Agent } from "../agent/agent.ts";
import { FleetplanError } from "../shared/errors.ts";
import { withTimeout } from "../shared/retry.ts";
import { createNode, createWorld, sealFor, startInProcess } from "../test/helpers/fleet.ts";
import type { Node, World } from "../test/helpers/fleet.ts";
import { startNats } from "../test/helpers/nats.ts";
import type { NatsServer } from "../test/helpers/nats.ts";
import { allRuns, markerIds, markerPlan, openRawBucket } from "../test/reliability/support.ts";
import type { RawBucket } from "../test/reliability/support.ts";
import { checkAgent } from "./load-check.ts";

export interface LoadOptions {
  agents: number;
  pushes: number;
  /** Start, pushes, convergence and checks must be done within this many ms of the call. */
  deadlineMs: number;
  /** Called with each figure as it is measured (one JSON line each in the CLI). */
  report?: (figure: Record<string, unknown>) => void;
}

export interface LoadResult {
  agents: number;
  pushes: number;
  /** Phase durations; null for a phase the deadline cut short. */
  start_ms: number | null;
  put_ms: number | null;
  converge_ms: number | null;
  runs_succeeded: number;
  runs_superseded: number;
  /** A missed deadline, then what would not stop, then one line per agent rule broken; empty when all is well. */
  problems: string[];
}

// Stopping the agents, then the bucket connection and nats-server (SIGTERM, then SIGKILL).
const AGENT_STOP_MS = 20_000;
const NATS_STOP_MS = 5_000;
/** The most cleanup can take after the deadline; a caller's own timeout should exceed deadline + this. */
export const CLEANUP_MS = AGENT_STOP_MS + 3 * NATS_STOP_MS;

// A phase still unfinished when the deadline passed; its message says what was missing, for whom.
const deadlinePassed = (message: string) => new FleetplanError("load_deadline", message);

// `promise`, or a load_deadline error once `until` (epoch ms) passes; the promise is left to settle.
// Checked up front too: a promise settled by synchronous work alone would beat an overdue timer.
const within = <T>(what: string, promise: Promise<T>, until: number): Promise<T> => {
  const late = () => deadlinePassed(`${what}: not done by the deadline`);
  if (Date.now() < until) return withTimeout(promise, until - Date.now(), late);
  promise.catch(() => {});
  return Promise.reject(late());
};

// Poll `done` every 50 ms until it holds (true) or `until` passes (false).
const waitUntil = async (done: () => boolean, until: number): Promise<boolean> => {
  while (!done()) {
    if (Date.now() >= until) return false;
    await sleep(50);
  }
  return true;
};

// Hosts failing `ok`, as "N of M agents (a, b, c, …)" (at most 10 names).
const whoNot = (nodes: Node[], agents: Agent[], ok: (a: Agent) => boolean): string => {
  const missing = nodes.filter((_, i) => !ok(agents[i]!)).map((n) => n.host);
  return `${missing.length} of ${nodes.length} agents (${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", …" : ""})`;
};

interface Phases {
  nodes: Node[];
  started: Promise<Agent>[];
  /** Agents that finished starting, in node order. */
  agents: Agent[];
  kv: RawBucket | null;
  figures: Pick<LoadResult, "start_ms" | "put_ms" | "converge_ms">;
}

// Open the bucket, start the agents, push id 1 and wait until all accepted it, push 2..last, wait for convergence.
const drive = async (opts: LoadOptions, nats: NatsServer, world: World, state: Phases, until: number): Promise<Agent[]> => {
  const last = opts.pushes + 1;
  // Opened first: with the store's buckets in place, agents need not wait for them.
  const kv = (state.kv = await within("opening the plan bucket", openRawBucket(nats.url), until));
  let t0 = performance.now();
  // One at a time: creating and starting are mostly synchronous (keys, SQLite), so a deadline
  // timer could not fire until all of them were done; this checks it between any two.
  for (let i = 0; i < opts.agents; i++) {
    const node = createNode(world, `load-${i}`, nats.url, { metricsListen: "off" });
    state.nodes.push(await within(`creating node ${i + 1} of ${opts.agents}`, node, until));
  }
  const agents = state.agents;
  for (const node of state.nodes) {
    state.started.push(startInProcess(node));
    agents.push(await within(`starting agent ${agents.length + 1} of ${opts.agents}`, state.started.at(-1)!, until));
  }
  state.figures.start_ms = Math.round(performance.now() - t0);
  opts.report?.({ phase: "start", agents: opts.agents, ms: state.figures.start_ms });

  const pushAll = (id: number) =>
    within(
      `putting id ${id} for every agent`,
      Promise.all(
        state.nodes.map((n) => kv.put(n.host, sealFor(world, n, id, markerPlan(n, `push ${id}`)), Math.max(0, until - Date.now()))),
      ),
      until,
    );
  await pushAll(1);
  if (!(await waitUntil(() => agents.every((a) => a.ledger.highWaterMark().id >= 1), until))) {
    throw deadlinePassed(`readiness: ${whoNot(state.nodes, agents, (a) => a.ledger.highWaterMark().id >= 1)} never accepted id 1`);
  }
  t0 = performance.now();
  for (let id = 2; id <= last; id++) await pushAll(id);
  state.figures.put_ms = Math.round(performance.now() - t0);
  const puts = opts.agents * opts.pushes;
  opts.report?.({ phase: "put", puts, ms: state.figures.put_ms, puts_per_s: Math.round((puts / state.figures.put_ms) * 1000) });

  const applied = (a: Agent) => a.ledger.lastSuccess()?.id === last;
  if (!(await waitUntil(() => agents.every(applied), until))) {
    throw deadlinePassed(`convergence: ${whoNot(state.nodes, agents, applied)} had not applied the last pushed id ${last}`);
  }
  state.figures.converge_ms = Math.round(performance.now() - t0);
  await within("agents finishing their runs", Promise.all(agents.map((a) => a.idle())), until);
  return agents;
};

// `promise`, or an error saying `what` did not finish within `ms`.
const bounded = <T>(what: string, promise: Promise<T>, ms: number): Promise<T> =>
  withTimeout(promise, ms, () => new Error(`cleanup: ${what} did not finish within ${ms} ms`));

// Stop what was started, each step bounded: agents, the bucket connection, nats-server (SIGKILL
// if SIGTERM is not enough), the temp dir. Returns one line per thing that would not stop.
const cleanUp = async (state: Phases, nats: NatsServer, world: World): Promise<string[]> => {
  const problems: string[] = [];
  const until = Date.now() + AGENT_STOP_MS;
  const started = await bounded("starting the agents", Promise.allSettled(state.started), AGENT_STOP_MS).catch((e: Error) => {
    problems.push(`${e.message}: those agents are left running`);
    return [];
  });
  const agents = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const stops = await Promise.allSettled(agents.map((a) => bounded(`${a.hostname}: stop()`, a.stop(), Math.max(0, until - Date.now()))));
  for (const s of stops) if (s.status === "rejected") problems.push((s.reason as Error).message);
  const closing = state.kv?.close() ?? Promise.resolve();
  await bounded("closing the bucket connection", closing, NATS_STOP_MS).catch((e: Error) => problems.push(e.message));
  await bounded("nats-server stopping on SIGTERM", nats.stop(), NATS_STOP_MS).catch(async (e: Error) => {
    problems.push(`${e.message}; sent SIGKILL`);
    await bounded("nats-server stopping on SIGKILL", nats.kill9(), NATS_STOP_MS).catch((e2: Error) => problems.push(e2.message));
  });
  world.cleanup();
  return problems;
};

/** Start a nats-server and `agents` in-process agents, push `pushes` times, verify, clean up. */
export const runLoad = async (opts: LoadOptions): Promise<LoadResult> => {
  const until = Date.now() + opts.deadlineMs;
  const last = opts.pushes + 1;
  const nats: NatsServer = await startNats();
  const world = await createWorld("fleetplan-load-").catch(async (error: unknown) => {
    await bounded("nats-server stopping on SIGTERM", nats.stop(), NATS_STOP_MS).catch(() => nats.kill9());
    throw error;
  });
  const state: Phases = { nodes: [], started: [], agents: [], kv: null, figures: { start_ms: null, put_ms: null, converge_ms: null } };
  // A missed deadline first, then what would not stop, then each agent's lines.
  const missed: string[] = [];
  const stuck: string[] = [];
  const agentProblems: string[] = [];
  const runs: ReturnType<typeof allRuns> = [];
  try {
    const agents = await drive(opts, nats, world, state, until).catch((error: unknown) => {
      if (!(error instanceof FleetplanError && error.reason === "load_deadline")) throw error;
      // A busy event loop runs the deadline's timer late: say by how much.
      missed.push(`deadline of ${opts.deadlineMs} ms passed (noticed ${Date.now() - until} ms after it): ${error.message}`);
      return state.agents;
    });
    agents.forEach((a, i) => {
      const agentRuns = allRuns(a.ledger);
      runs.push(...agentRuns);
      agentProblems.push(...checkAgent({ host: a.hostname, runs: agentRuns, executed: markerIds(state.nodes[i]!) }, last));
    });
  } finally {
    const t0 = performance.now();
    stuck.push(...(await cleanUp(state, nats, world)));
    opts.report?.({ phase: "cleanup", ms: Math.round(performance.now() - t0) });
  }
  const result: LoadResult = {
    agents: opts.agents,
    pushes: opts.pushes,
    ...state.figures,
    runs_succeeded: runs.filter((r) => r.state === "succeeded").length,
    runs_superseded: runs.filter((r) => r.state === "superseded").length,
    problems: [...missed, ...stuck, ...agentProblems],
  };
  const { converge_ms: ms, runs_succeeded, runs_superseded } = result;
  opts.report?.({ phase: "converge", ms, runs_succeeded, runs_superseded, problems: result.problems.length });
  return result;
};
