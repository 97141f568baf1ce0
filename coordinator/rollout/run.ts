import type { CoordinatorDb, ServerRow } from "../db.ts";
import { FleetplanError } from "../../shared/errors.ts";
import type { LoadedPlan } from "../plan-source.ts";
import type { PushEvent, PushRequest, PushSummary } from "../push.ts";
import { accountBudget, budgetReason, GOOD_OUTCOMES } from "./budget.ts";
import type { RolloutDb } from "./db.ts";
import type { GateVerdict } from "./gate.ts";
import type { Rollout, RolloutTarget } from "./types.ts";
import { hostsToPush, waveOf } from "./waves.ts";

// Runs a rollout from the wave it is in: push the wave (and retry earlier failures), wait, check
// convergence, account the error budget, evaluate the gates, then the next wave. Every step's
// result is written to the database before the next, so a crashed coordinator can resume.

/** A wave's progress, `--json` and people alike; `wave` is 1-based. */
export interface WaveEvent {
  event: "wave";
  rollout: number;
  wave: number;
  waves: number;
  hosts: string[];
  state: "started" | "converged" | "paused";
  budget?: { used: number; limit: number };
  reason?: string;
  gates?: GateVerdict[];
}

/** The automatic revert of a stopped rollout. */
export interface RevertEvent {
  event: "revert";
  rollout: number;
  state: "started" | "finished";
  hosts: string[];
  no_previous?: string[];
  counts?: Record<string, number>;
}

export type RolloutEvent = WaveEvent | RevertEvent;

export interface RolloutDeps {
  db: CoordinatorDb;
  rollouts: RolloutDb;
  /** push() with the store, keys and SSH delivery bound (cli/rollout.ts); `emit` gets its events. */
  push: (req: PushRequest) => Promise<PushSummary>;
  gate: (query: string) => Promise<GateVerdict>;
  /** Converged by the agents' metrics (status's verdict), asked only with --prometheus. */
  converged: (servers: ServerRow[]) => Promise<Set<string>>;
  emit: (e: RolloutEvent | PushEvent) => void;
  now: () => number;
  /** Called as each wait begins; aborting its signal (SIGINT) pauses the rollout after the wave. */
  waitInterrupt?: () => AbortSignal;
  /** Between metrics convergence polls (tests shorten it). */
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Inventory rows for `hosts`, in their order; a host removed from the inventory since the rollout began is named. */
const serversFor = (db: CoordinatorDb, hosts: string[]): ServerRow[] => {
  const rows = new Map(db.servers().map((s) => [s.host, s]));
  const missing = hosts.filter((h) => !rows.has(h));
  if (missing.length > 0) {
    throw new FleetplanError(
      "not_found",
      `rollout targets no longer in the inventory: ${missing.join(", ")}; add them back or abort the rollout`,
    );
  }
  return hosts.map((h) => rows.get(h)!);
};

const pushRequest = (r: Rollout, targets: ServerRow[], plans: Map<string, LoadedPlan>, force: boolean, deps: RolloutDeps): PushRequest => ({
  targets,
  plans,
  dryRun: false,
  force,
  wait: true,
  waitTimeoutMs: r.options.waveTimeoutMs,
  expiresInMs: r.options.expiresInMs,
  concurrency: r.options.concurrency,
  viaSsh: r.options.viaSsh,
  ...(deps.waitInterrupt && { waitInterrupt: deps.waitInterrupt }),
});

/** With --prometheus: poll until every succeeded host's metrics show convergence or the wave's deadline passes; the rest are `not_converged`. */
const confirmByMetrics = async (r: Rollout, summary: PushSummary, deadline: number, deps: RolloutDeps): Promise<void> => {
  let waiting = summary.targets.filter((t) => t.outcome === "succeeded");
  while (waiting.length > 0) {
    const converged = await deps.converged(
      serversFor(
        deps.db,
        waiting.map((t) => t.host),
      ),
    );
    waiting = waiting.filter((t) => !converged.has(t.host));
    if (waiting.length === 0 || deps.now() >= deadline) break;
    await sleep(deps.pollMs ?? 1000);
  }
  const message = `${r.options.prometheus} shows no convergence by the wave deadline`;
  for (const t of waiting) Object.assign(t, { outcome: "not_converged", reason: "not_converged", message });
};

/** Stop: record why, tell, and revert the hosts that moved when the rollout asks for it. */
const pause = async (
  r: Rollout,
  wave: number,
  hosts: string[],
  reason: string,
  deps: RolloutDeps,
  extra: Partial<WaveEvent> = {},
): Promise<void> => {
  deps.rollouts.setState(r.id, "paused", wave, reason, deps.now());
  deps.emit({ event: "wave", rollout: r.id, wave: wave + 1, waves: r.ends.length, hosts, state: "paused", reason, ...extra });
  if (r.options.revertOnFailure) await revertRollout(r.id, deps);
};

/**
 * Push every host that moved in rollout `id` (its expected state is no longer what it was when
 * the rollout began) its previous plan again, under a new id; hosts whose previous plan is not
 * known (never pushed through fleetplan with this database) are listed, not touched.
 */
export const revertRollout = async (id: number, deps: RolloutDeps): Promise<void> => {
  const r = deps.rollouts.get(id);
  const expected = deps.db.expected();
  const moved = deps.rollouts.targets(id).filter((t) => {
    const now = expected.get(t.host);
    return now !== undefined && now.id !== t.prevId && now.planHash !== t.prevHash;
  });
  const able = moved.filter((t): t is RolloutTarget & { prevBody: string } => t.prevBody !== null);
  const noPrevious = moved.filter((t) => t.prevBody === null).map((t) => t.host);
  deps.emit({ event: "revert", rollout: id, state: "started", hosts: able.map((t) => t.host), no_previous: noPrevious });
  const plans = new Map(able.map((t) => [t.host, deps.rollouts.loadBody(t.prevBody)]));
  const summary =
    able.length === 0
      ? null
      : await deps.push(
          pushRequest(
            r,
            serversFor(
              deps.db,
              able.map((t) => t.host),
            ),
            plans,
            true,
            deps,
          ),
        );
  const rows = summary?.targets.map((t) => ({ host: t.host, id: t.id, outcome: t.outcome })) ?? [];
  const counts = summary?.counts ?? {};
  const ok = (summary?.ok ?? true) && noPrevious.length === 0;
  deps.rollouts.recordRevert(id, rows, { at: deps.now(), hosts: able.map((t) => t.host), noPrevious, counts, ok });
  deps.emit({ event: "revert", rollout: id, state: "finished", hosts: able.map((t) => t.host), no_previous: noPrevious, counts });
};

/** Run rollout `id` from its current wave until it completes or pauses; returns its final record. */
export const runRollout = async (id: number, deps: RolloutDeps): Promise<Rollout> => {
  let r = deps.rollouts.get(id);
  if (r.state !== "running" && r.state !== "paused") {
    throw new FleetplanError("conflict", `rollout ${id} is ${r.state}; nothing to resume (start a new one with push --waves)`);
  }
  const plans = deps.rollouts.plans(id);
  const waves = r.ends.length;
  const first = r.wave;
  for (let wave = r.wave; wave < waves; wave++) {
    deps.rollouts.setState(id, "running", wave, null, deps.now());
    const targets = deps.rollouts.targets(id);
    const own = targets.filter((t) => waveOf(t.position, r.ends) === wave).map((t) => t.host);
    const hosts = hostsToPush(targets, r.ends, wave, GOOD_OUTCOMES, wave === first);
    const deadline = deps.now() + r.options.waveTimeoutMs;
    deps.emit({ event: "wave", rollout: id, wave: wave + 1, waves, hosts: own, state: "started" });
    if (hosts.length > 0) {
      const summary = await deps.push(pushRequest(r, serversFor(deps.db, hosts), plans, false, deps));
      if (r.options.prometheus !== null) await confirmByMetrics(r, summary, deadline, deps);
      const rows = summary.targets.map((t) => ({ host: t.host, id: t.id, planHash: t.plan_hash, outcome: t.outcome, reason: t.reason }));
      deps.rollouts.recordOutcomes(id, rows, deps.now());
      if (deps.waitInterrupt?.().aborted) {
        await pause(r, wave, own, `interrupted during wave ${wave + 1}; \`fleetplan rollout resume ${id}\` continues`, deps);
        return deps.rollouts.get(id);
      }
    }
    const budget = accountBudget(deps.rollouts.targets(id), r.options.budgetLimit);
    const spent = { budget: { used: budget.used, limit: budget.limit } };
    if (budget.exhausted) {
      await pause(r, wave, own, budgetReason(budget), deps, spent);
      return deps.rollouts.get(id);
    }
    const gates: GateVerdict[] = [];
    for (const query of r.options.gates) gates.push(await deps.gate(query));
    const closed = gates.filter((g) => !g.pass);
    if (closed.length > 0) {
      await pause(r, wave, own, closed.map((g) => g.why).join("; "), deps, { ...spent, gates });
      return deps.rollouts.get(id);
    }
    deps.rollouts.setState(id, wave + 1 === waves ? "completed" : "running", wave + 1, null, deps.now());
    deps.emit({
      event: "wave",
      rollout: id,
      wave: wave + 1,
      waves,
      hosts: own,
      state: "converged",
      ...spent,
      ...(gates.length > 0 && { gates }),
    });
    r = deps.rollouts.get(id);
  }
  if (waves === 0) deps.rollouts.setState(id, "completed", 0, null, deps.now());
  return deps.rollouts.get(id);
};
