import { FleetplanError, reasonOf } from "../shared/errors.ts";
import { mapLimit } from "../shared/pool.ts";
import type { Logger } from "../shared/log.ts";
import type { AdminKeyPair, PlanStore, PutResult } from "../shared/types.ts";
import type { CoordinatorDb, Delivered, ResultInput, ServerRow } from "./db.ts";
import { decideTarget, keepNewer, targetStates } from "./decide.ts";
import type { TargetStates } from "./decide.ts";
import { planBinder } from "./plan-binder.ts";
import type { LoadedPlan } from "./plan-source.ts";
import { planSaltKey } from "./plan-salt.ts";
import type { SealOutcome } from "./seal-batch.ts";
import { createSealPool, inlineSealer } from "./seal-pool.ts";
import type { Sealer } from "./seal-pool.ts";
import { createStatusVerifier } from "./status-evidence.ts";
import { createMetricsProbe } from "./agent-probe.ts";
import { waitForOutcomes } from "./wait.ts";

export interface PushRequest {
  targets: ServerRow[];
  plans: Map<string, LoadedPlan>;
  dryRun: boolean;
  force: boolean;
  wait: boolean;
  waitTimeoutMs: number;
  expiresInMs: number;
  /** Deliveries in flight: compare-and-set puts pipelined to the store; SSH deliveries (processes) at most SSH_IN_FLIGHT. */
  concurrency: number;
  /** Deliver every target over SSH, whatever its bootstrapped flag. */
  viaSsh: boolean;
  /** Called as the wait begins; aborting its signal (SIGINT) stops the wait: targets still in flight end as `wait_interrupted`. */
  waitInterrupt?: () => AbortSignal;
  tuning?: Partial<PushTuning>;
  /** Approval of a staged change (cli/approve.ts): per host, the id and co-signed envelope to deliver as they are. */
  sealed?: Map<string, { id: number; planHash: string; envelope: Uint8Array }>;
}

/** How a push batches its work; tests shrink it to cross batch edges. */
export interface PushTuning {
  /** Store targets per id reservation and per results transaction (one fsync each). */
  batchSize: number;
  /** Batches sealed ahead of the one being put, so the sealers never wait for the store. */
  sealAhead: number;
  /** Targets from which sealing moves to worker threads: below it, their start-up costs more than it saves (bench/push.ts). */
  poolMinTargets: number;
}

/** Measured with bench/push.ts on 2 cores: 256-target batches cost 2 fsyncs each and keep the pipeline's tail short. */
export const PUSH_TUNING: PushTuning = { batchSize: 256, sealAhead: 2, poolMinTargets: 2000 };

/** The base of a put to a key never written by us: revision 0 holds in any bucket (PlanStore.put). */
const ABSENT: Required<PutResult> = { epoch: "", revision: 0 };

/** SSH deliveries in flight at most, whatever --concurrency says: each is an ssh process. */
export const SSH_IN_FLIGHT = 16;

/** Per-target record of what happened; `outcome` values are the results-table codes. */
export interface TargetResult {
  host: string;
  action: "push" | "skip";
  decision: string;
  id: number | null;
  plan_hash: string;
  /** Size of the sealed envelope (dry runs seal too); null for a skipped target or when sealing failed. */
  bytes: number | null;
  via: "store" | "ssh";
  outcome: string;
  reason: string | null;
  message: string | null;
}

export type PushEvent =
  | ({ event: "plan" } & Pick<TargetResult, "host" | "action" | "decision" | "id" | "plan_hash" | "via">)
  | ({ event: "put" | "put_failed" | "delivered" } & Pick<TargetResult, "host" | "id" | "outcome" | "reason" | "message"> & {
        revision?: number;
      })
  | { event: "status"; host: string; state: string; id: number | null; step_index: number | null; steps: number | null }
  /** A status record about a pushed host that is not evidence (status-evidence.ts): reported, never believed. */
  | { event: "status_refused"; host: string; claimed_host: string | null; reason: string }
  | ({ event: "final" } & Pick<TargetResult, "host" | "id" | "outcome" | "reason" | "message">);

export interface PushDeps {
  db: CoordinatorDb;
  /** Opened on first use, so a dry run or an SSH-only push needs no store. */
  store: () => Promise<PlanStore>;
  storeName: string;
  signers: AdminKeyPair[];
  now: () => Date;
  /** Which hosts converged on their expected id and hash right now (and, when known, which drifted from it)? */
  converged: (hosts: ServerRow[]) => Promise<ReadonlySet<string> | TargetStates>;
  /** Day-0 delivery: pipe the envelope to `fleetplan-agent apply -` on the host. */
  deliverSsh?: (server: ServerRow, envelope: Uint8Array) => Promise<{ outcome: string; reason: string | null; message: string | null }>;
  emit: (event: PushEvent) => void;
  operator: string;
  /** Told when the status watch of --wait drops and is followed again. */
  logger?: Logger;
  /** `push --stage` (two-person rule): each sealed envelope goes here instead of to its host; the outcome is `staged`. */
  stage?: (result: TargetResult, envelope: Uint8Array) => void;
}

export interface PushSummary {
  push_id: number | null;
  ok: boolean;
  dry_run: boolean;
  counts: Record<string, number>;
  /** Status records refused while waiting, by reason (forged, unsigned, another node's, replayed). */
  status_refused: Record<string, number>;
  targets: TargetResult[];
}

/** SSH outcomes for which the agent accepted the envelope (its id is now the one to converge on); a rejection moved nothing on the host. */
const ACCEPTED_OVER_SSH = new Set(["succeeded", "failed", "interrupted"]);

const countBy = (results: TargetResult[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  return counts;
};

/** The outcome of a pushed target --wait saw no final state for. */
const unfinished = (interrupted: boolean, id: number) =>
  interrupted
    ? {
        outcome: "wait_interrupted",
        reason: "wait_interrupted",
        message: `interrupted before the agent reported a final state for id ${id}`,
      }
    : { outcome: "timeout", reason: "timeout", message: `the agent reported no final state for id ${id} within --timeout` };

/**
 * Decide per target (skip what already converged on this hash), reserve ids a batch at a time,
 * seal (on worker threads for large pushes), deliver with many puts in flight and retries,
 * record each batch's outcomes in one transaction, optionally wait for the agents. A dry run
 * seals too (with the id a push would get now), so sizes and sealing errors match a push.
 */
export const push = async (req: PushRequest, deps: PushDeps): Promise<PushSummary> => {
  const tuning = { ...PUSH_TUNING, ...req.tuning };
  // Started first, so the workers' start-up overlaps the convergence check and the plan binding.
  const sealer = req.targets.length >= tuning.poolMinTargets ? createSealPool(deps.signers) : inlineSealer(deps.signers);
  try {
    return await pushWith(req, deps, tuning, sealer);
  } finally {
    await sealer.close();
  }
};

const pushWith = async (req: PushRequest, deps: PushDeps, tuning: PushTuning, sealer: Sealer): Promise<PushSummary> => {
  const { db } = deps;
  const expected = db.expected();
  // Each host's own plaintext (salted: plan-salt.ts) and the hash it will report once applied, each plan serialised
  // once. Bound ahead only where the hash decides whether to ask the agents (below), otherwise batch by batch as the
  // push reaches it, so the first batch is sealed while later ones are bound.
  const saltKey = planSaltKey(deps.signers[0]!);
  const binders = new Map<LoadedPlan, ReturnType<typeof planBinder>>();
  const bound: { bytes: Uint8Array; hash: string }[] = [];
  const planOf = (i: number) => {
    if (bound[i]) return bound[i];
    const loaded = req.plans.get(req.targets[i]!.host)!;
    const bind = binders.get(loaded) ?? binders.set(loaded, planBinder(loaded.plan, saltKey)).get(loaded)!;
    return (bound[i] = bind(req.targets[i]!.host));
  };
  // Only a host last delivered this very plan can be skipped (decideTarget): only those are asked whether they
  // converged. A new plan to 10,000 hosts reads no agent's metrics first.
  const candidates =
    req.force || req.sealed
      ? []
      : req.targets.filter((server, i) => {
          const last = expected.get(server.host);
          return last !== undefined && last.planHash === planOf(i).hash;
        });
  const states = candidates.length === 0 ? targetStates(new Set()) : await deps.converged(candidates);
  const { converged, drifted } = "drifted" in states ? states : targetStates(states);
  const pushId = req.dryRun
    ? null
    : db.startPush({ store: deps.storeName, dryRun: false, force: req.force, operator: deps.operator, at: deps.now().getTime() });
  const rowOf = (r: TargetResult): ResultInput => ({
    host: r.host,
    id: r.id,
    planHash: r.plan_hash,
    outcome: r.outcome,
    reason: r.reason,
    message: r.message,
    at: deps.now().getTime(),
  });
  // One transaction per batch: the expected states its deliveries moved and a row per target.
  const record = (rs: TargetResult[], delivered: Delivered[] = []) => {
    if (pushId !== null && rs.length > 0) db.recordBatch(pushId, { delivered, results: rs.map(rowOf) });
  };
  const emitPlan = (r: TargetResult) =>
    deps.emit({ event: "plan", host: r.host, action: r.action, decision: r.decision, id: r.id, plan_hash: r.plan_hash, via: r.via });
  const putAt = new Map<string, number>();
  // Where our last put left each host's key: the next put is a compare-and-set on it, with no read first. A host never
  // delivered to is first put on "absent": a new fleet's first push is one request per host too.
  const bases = req.dryRun ? new Map<string, Required<PutResult>>() : db.putBases();
  const baseOf = (host: string) => bases.get(host) ?? (expected.has(host) ? undefined : ABSENT);
  // What counts as "ours" in the store: an envelope any of our admin keys signed.
  const trust = { keys: new Map(deps.signers.map((k) => [k.keyId, k.publicKey])), threshold: 1 };

  const results = req.targets.map((server): TargetResult => {
    const via = req.viaSsh || !server.bootstrapped ? "ssh" : "store";
    return {
      host: server.host,
      action: "push",
      decision: "",
      id: null,
      plan_hash: "",
      bytes: null,
      via,
      outcome: "pending",
      reason: null,
      message: null,
    };
  });
  /** Bind target i's plan and decide: true when it is to be sent; a skipped target is announced here. */
  const decide = (i: number): boolean => {
    const server = req.targets[i]!;
    const r = results[i]!;
    const plan = planOf(i);
    const host = server.host;
    const decision = decideTarget(plan.hash, expected.get(host), converged.has(host), req.force, drifted.has(host));
    Object.assign(r, { action: decision.action, decision: decision.reason, plan_hash: plan.hash });
    if (decision.action === "push") return true;
    Object.assign(r, { id: expected.get(server.host)!.id, outcome: "skipped" });
    emitPlan(r);
    return false;
  };

  const failed = (r: TargetResult, reason: string, message: string) => {
    const outcome = reason === "superseded" ? "superseded" : r.via === "ssh" ? "ssh_failed" : "put_failed";
    Object.assign(r, { outcome, reason, message });
    deps.emit({ event: "put_failed", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
  };

  // A staged change being approved: its ids were reserved and its envelopes sealed when it was staged.
  const presealed = (batch: number[]): { send: number[]; sealed: SealOutcome[] } => {
    const sealed = batch.map((i) => {
      const r = results[i]!;
      const staged = req.sealed!.get(r.host)!;
      Object.assign(r, { decision: "approved", id: staged.id, plan_hash: staged.planHash });
      emitPlan(r);
      return staged.envelope;
    });
    return { send: batch, sealed };
  };
  // The batch's targets to send get their ids reserved durably (one transaction) before any of their envelopes is sealed.
  const prepare = async (batch: number[]): Promise<{ send: number[]; sealed: SealOutcome[] }> => {
    if (req.sealed) return presealed(batch);
    const send = batch.filter(decide);
    const failAll = (error: unknown) => send.map(() => ({ reason: reasonOf(error), message: (error as Error).message }));
    if (send.length === 0) return { send, sealed: [] };
    try {
      const hosts = send.map((i) => results[i]!.host);
      const ids = req.dryRun ? new Map(hosts.map((h) => [h, db.peekNextId(h, deps.now())])) : db.reserveIds(hosts, deps.now());
      for (const i of send) {
        results[i]!.id = ids.get(results[i]!.host)!;
        emitPlan(results[i]!);
      }
    } catch (error) {
      return { send, sealed: failAll(error) };
    }
    const now = deps.now().getTime();
    const items = send.map((i) => ({
      bytes: bound[i]!.bytes,
      id: results[i]!.id!,
      target: results[i]!.host,
      nodeKey: req.targets[i]!.nodeKey,
    }));
    return { send, sealed: await sealer.seal(items, { expires: now + req.expiresInMs, issued: now }).catch(failAll) };
  };

  // Only a delivered envelope moves the expected state: a failed put leaves the target's expectation as it was.
  const deliver = async (server: ServerRow, r: TargetResult, envelope: Uint8Array): Promise<Delivered | null> => {
    if (r.via === "ssh") {
      if (!deps.deliverSsh) throw new FleetplanError("ssh_failed", "SSH delivery is not available");
      Object.assign(r, await deps.deliverSsh(server, envelope));
      deps.emit({ event: "delivered", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
      return ACCEPTED_OVER_SSH.has(r.outcome) ? { host: r.host, id: r.id!, planHash: r.plan_hash, at: deps.now().getTime() } : null;
    }
    // Taken before the put: an agent can refuse the envelope before the put's answer arrives here.
    const sentAt = deps.now().getTime();
    const keep = (current: Uint8Array) => keepNewer(current, { host: server.host, id: r.id! }, trust);
    const { revision, epoch } = await (await deps.store()).put(server.host, envelope, keep, baseOf(server.host));
    putAt.set(r.host, sentAt);
    r.outcome = "pushed";
    deps.emit({ event: "put", host: r.host, id: r.id, outcome: r.outcome, reason: null, message: null, revision });
    return { host: r.host, id: r.id!, planHash: r.plan_hash, at: sentAt, ...(epoch !== undefined && { put: { epoch, revision } }) };
  };

  // Deliver a prepared batch, `limit` at a time, then record it (skipped targets too): an interrupted push keeps the rows
  // of every finished batch.
  const deliverBatch = async (batch: number[], { send, sealed }: { send: number[]; sealed: SealOutcome[] }, limit: number) => {
    const delivered: Delivered[] = [];
    await mapLimit(send, limit, async (i, k) => {
      const r = results[i]!;
      const envelope = sealed[k]!;
      if (!(envelope instanceof Uint8Array)) return failed(r, envelope.reason, envelope.message);
      r.bytes = envelope.length;
      if (req.dryRun) return void (r.outcome = "would_push");
      if (deps.stage) {
        deps.stage(r, envelope);
        r.outcome = "staged";
        return;
      }
      try {
        const moved = await deliver(req.targets[i]!, r, envelope);
        if (moved) delivered.push(moved);
      } catch (error) {
        failed(r, reasonOf(error), (error as Error).message);
      }
    });
    record(
      batch.map((i) => results[i]!),
      delivered,
    );
  };

  // Store targets: batch after batch, the next ones bound, decided and sealed (ids reserved first) while this one is put.
  // SSH targets: one by one, as before.
  const viaStore = results.flatMap((r, i) => (r.via === "store" ? [i] : []));
  const size = tuning.batchSize;
  const batches = Array.from({ length: Math.ceil(viaStore.length / size) }, (_, b) => viaStore.slice(b * size, (b + 1) * size));
  const prepared: ReturnType<typeof prepare>[] = [];
  const prepareAhead = (b: number) => {
    if (b >= batches.length || prepared[b]) return;
    prepared[b] = prepare(batches[b]!);
    prepared[b].catch(() => {}); // a failure surfaces when its turn comes, not as an unhandled rejection before
  };
  const storeRun = async () => {
    for (let b = 0; b < batches.length; b++) {
      prepareAhead(b);
      const ready = await prepared[b]!;
      // Only now the next ones: the first batch is sealed alone, so the first puts start early.
      for (let k = b + 1; k <= b + tuning.sealAhead; k++) prepareAhead(k);
      await deliverBatch(batches[b]!, ready, req.concurrency);
    }
  };
  const viaSsh = results.flatMap((r, i) => (r.via === "ssh" ? [i] : []));
  const sshRun = () => mapLimit(viaSsh, Math.min(req.concurrency, SSH_IN_FLIGHT), async (i) => deliverBatch([i], await prepare([i]), 1));
  await Promise.all([storeRun(), sshRun()]);
  await sealer.close(); // idle workers need not outlive the sealing, e.g. through a --wait of minutes

  const inFlight = results.filter((r) => r.outcome === "pushed");
  let refused: Record<string, number> = {};
  if (req.wait && inFlight.length > 0) {
    const interrupt = req.waitInterrupt?.();
    const pushed = new Map(inFlight.map((r) => [r.host, { id: r.id!, putAt: putAt.get(r.host)! }]));
    const verify = createStatusVerifier(db.servers());
    const { outcomes, refused: seen } = await waitForOutcomes(await deps.store(), pushed, verify, req.waitTimeoutMs, deps.emit, {
      ...(interrupt && { signal: interrupt }),
      probe: createMetricsProbe(req.targets),
      ...(deps.logger && {
        onRetry: (error: unknown, delayMs: number) =>
          deps.logger!.warn("status_watch_retry", { error: error === null ? "watch ended" : (error as Error).message, retry_ms: delayMs }),
      }),
    });
    refused = seen;
    for (const r of inFlight) {
      const outcome = outcomes.get(r.host);
      Object.assign(r, outcome ? { message: null, ...outcome } : unfinished(interrupt?.aborted === true, r.id!));
      deps.emit({ event: "final", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
    }
    // The final outcomes as second rows (the delivery rows are already in history), in one transaction.
    record(inFlight);
  }

  const good = new Set(
    req.dryRun
      ? ["would_push", "skipped"]
      : deps.stage
        ? ["staged", "skipped"]
        : req.wait
          ? ["succeeded", "skipped"]
          : ["pushed", "succeeded", "skipped"],
  );
  const summary: PushSummary = {
    push_id: pushId,
    ok: results.every((r) => good.has(r.outcome)),
    dry_run: req.dryRun,
    counts: countBy(results),
    status_refused: refused,
    targets: results,
  };
  if (pushId !== null) db.finishPush(pushId, deps.now().getTime(), { ok: summary.ok, counts: summary.counts, status_refused: refused });
  return summary;
};
