import { sealEnvelope } from "../shared/envelope.ts";
import { FleetplanError, reasonOf } from "../shared/errors.ts";
import { mapLimit } from "../shared/pool.ts";
import type { Logger } from "../shared/log.ts";
import type { AdminKeyPair, PlanStore } from "../shared/types.ts";
import { loadNodePublicKey } from "../shared/key-files.ts";
import type { CoordinatorDb, ServerRow } from "./db.ts";
import { decideTarget, keepNewer } from "./decide.ts";
import type { LoadedPlan } from "./plan-source.ts";
import { bindPlan, planSaltKey } from "./plan-salt.ts";
import { createStatusVerifier } from "./status-evidence.ts";
import { waitForOutcomes } from "./wait.ts";

export interface PushRequest {
  targets: ServerRow[];
  plans: Map<string, LoadedPlan>;
  dryRun: boolean;
  force: boolean;
  wait: boolean;
  waitTimeoutMs: number;
  expiresInMs: number;
  concurrency: number;
  /** Deliver every target over SSH, whatever its bootstrapped flag. */
  viaSsh: boolean;
  /** Called as the wait begins; aborting its signal (SIGINT) stops the wait: targets still in flight end as `wait_interrupted`. */
  waitInterrupt?: () => AbortSignal;
}

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
  | ({ event: "put" | "put_failed" | "delivered" } & Pick<TargetResult, "host" | "id" | "outcome" | "reason" | "message"> & { revision?: number })
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
  /** Is `host` converged on its expected id and hash right now? */
  converged: (hosts: ServerRow[]) => Promise<Set<string>>;
  /** Day-0 delivery: pipe the envelope to `fleetplan-agent apply -` on the host. */
  deliverSsh?: (server: ServerRow, envelope: Uint8Array) => Promise<{ outcome: string; reason: string | null; message: string | null }>;
  emit: (event: PushEvent) => void;
  operator: string;
  /** Told when the status watch of --wait drops and is followed again. */
  logger?: Logger;
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

const countBy = (results: TargetResult[]) => results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.outcome]: (acc[r.outcome] ?? 0) + 1 }), {});

/** The outcome of a pushed target --wait saw no final state for. */
const unfinished = (interrupted: boolean, id: number) =>
  interrupted
    ? { outcome: "wait_interrupted", reason: "wait_interrupted", message: `interrupted before the agent reported a final state for id ${id}` }
    : { outcome: "timeout", reason: "timeout", message: `the agent reported no final state for id ${id} within --timeout` };

/**
 * Decide per target (skip what already converged on this hash), issue ids, seal, deliver
 * concurrently with retries, optionally wait for the agents, and record every outcome. A dry
 * run seals too (with the id a push would get now), so sizes and sealing errors match a push.
 */
export const push = async (req: PushRequest, deps: PushDeps): Promise<PushSummary> => {
  const { db } = deps;
  const expected = db.expected();
  const converged = req.force ? new Set<string>() : await deps.converged(req.targets);
  const pushId = req.dryRun ? null : db.startPush({ store: deps.storeName, dryRun: false, force: req.force, operator: deps.operator, at: deps.now().getTime() });
  const record = (r: TargetResult) => {
    if (pushId !== null) db.recordResult(pushId, { host: r.host, id: r.id, planHash: r.plan_hash, outcome: r.outcome, reason: r.reason, message: r.message, at: deps.now().getTime() });
  };
  const emitPlan = (r: TargetResult) => deps.emit({ event: "plan", host: r.host, action: r.action, decision: r.decision, id: r.id, plan_hash: r.plan_hash, via: r.via });
  const putAt = new Map<string, number>();
  // What counts as "ours" in the store: an envelope any of our admin keys signed.
  const trust = { keys: new Map(deps.signers.map((k) => [k.keyId, k.publicKey])), threshold: 1 };

  // Each host's own plaintext (salted: plan-salt.ts) and the hash it will report once applied.
  const saltKey = planSaltKey(deps.signers[0]!);
  const bound = req.targets.map((server) => bindPlan(req.plans.get(server.host)!.plan, saltKey, server.host));
  const results = req.targets.map((server, i): TargetResult => {
    const plan = bound[i]!;
    const decision = decideTarget(plan.hash, expected.get(server.host), converged.has(server.host), req.force);
    const via = req.viaSsh || !server.bootstrapped ? "ssh" : "store";
    const skip = decision.action === "skip";
    return { host: server.host, action: decision.action, decision: decision.reason, id: skip ? expected.get(server.host)!.id : null, plan_hash: plan.hash, bytes: null, via, outcome: skip ? "skipped" : "pending", reason: null, message: null };
  });

  // Only a delivered envelope moves the expected state: a failed put leaves the target's expectation as it was.
  const deliver = async (server: ServerRow, r: TargetResult, envelope: Uint8Array) => {
    if (r.via === "ssh") {
      if (!deps.deliverSsh) throw new FleetplanError("ssh_failed", "SSH delivery is not available");
      Object.assign(r, await deps.deliverSsh(server, envelope));
      if (ACCEPTED_OVER_SSH.has(r.outcome)) db.setExpected(r.host, r.id!, r.plan_hash, deps.now().getTime());
      deps.emit({ event: "delivered", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
    } else {
      // Taken before the put: an agent can refuse the envelope before the put's answer arrives here.
      const sentAt = deps.now().getTime();
      const { revision } = await (await deps.store()).put(server.host, envelope, (current) => keepNewer(current, { host: server.host, id: r.id! }, trust));
      putAt.set(r.host, sentAt);
      db.setExpected(r.host, r.id!, r.plan_hash, sentAt);
      r.outcome = "pushed";
      deps.emit({ event: "put", host: r.host, id: r.id, outcome: r.outcome, reason: null, message: null, revision });
    }
  };

  await mapLimit(req.targets, req.concurrency, async (server, i) => {
    const r = results[i]!;
    if (r.action === "skip") {
      emitPlan(r);
      return record(r);
    }
    try {
      r.id = req.dryRun ? db.peekNextId(server.host, deps.now()) : db.issueId(server.host, deps.now());
      emitPlan(r);
      const envelope = sealEnvelope(bound[i]!.bytes, {
        id: r.id, target: server.host, nodePublicKey: loadNodePublicKey(server.nodeKey).publicKey,
        signers: deps.signers, expires: deps.now().getTime() + req.expiresInMs, issued: deps.now().getTime(),
      });
      r.bytes = envelope.length;
      if (req.dryRun) r.outcome = "would_push";
      else await deliver(server, r, envelope);
    } catch (error) {
      const reason = reasonOf(error);
      const outcome = reason === "superseded" ? "superseded" : r.via === "ssh" ? "ssh_failed" : "put_failed";
      Object.assign(r, { outcome, reason, message: (error as Error).message });
      deps.emit({ event: "put_failed", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
    }
    // Recorded now, so an interrupted --wait still leaves the delivery in history; the final outcome follows as a second row.
    record(r);
  });

  const inFlight = results.filter((r) => r.outcome === "pushed");
  let refused: Record<string, number> = {};
  if (req.wait && inFlight.length > 0) {
    const interrupt = req.waitInterrupt?.();
    const pushed = new Map(inFlight.map((r) => [r.host, { id: r.id!, putAt: putAt.get(r.host)! }]));
    const verify = createStatusVerifier(db.servers());
    const { outcomes, refused: seen } = await waitForOutcomes(await deps.store(), pushed, verify, req.waitTimeoutMs, deps.emit, {
      ...(interrupt && { signal: interrupt }),
      ...(deps.logger && { onRetry: (error: unknown, delayMs: number) => deps.logger!.warn("status_watch_retry", { error: error === null ? "watch ended" : (error as Error).message, retry_ms: delayMs }) }),
    });
    refused = seen;
    for (const r of inFlight) {
      const outcome = outcomes.get(r.host);
      Object.assign(r, outcome ? { ...outcome, message: null } : unfinished(interrupt?.aborted === true, r.id!));
      deps.emit({ event: "final", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
      record(r);
    }
  }

  const good = new Set(req.dryRun ? ["would_push", "skipped"] : req.wait ? ["succeeded", "skipped"] : ["pushed", "succeeded", "skipped"]);
  const summary: PushSummary = {
    push_id: pushId, ok: results.every((r) => good.has(r.outcome)), dry_run: req.dryRun, counts: countBy(results), status_refused: refused, targets: results,
  };
  if (pushId !== null) db.finishPush(pushId, deps.now().getTime(), { ok: summary.ok, counts: summary.counts, status_refused: refused });
  return summary;
};
