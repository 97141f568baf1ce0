import { sealEnvelope } from "../shared/envelope.ts";
import { FleetplanError, reasonOf } from "../shared/errors.ts";
import { mapLimit } from "../shared/pool.ts";
import type { AdminKeyPair, PlanStore } from "../shared/types.ts";
import { loadNodePublicKey } from "../shared/key-files.ts";
import type { CoordinatorDb, ServerRow } from "./db.ts";
import { decideTarget } from "./decide.ts";
import type { LoadedPlan } from "./plan-source.ts";
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
}

/** Per-target record of what happened; `outcome` values are the results-table codes. */
export interface TargetResult {
  host: string;
  action: "push" | "skip";
  decision: string;
  id: number | null;
  plan_hash: string;
  bytes: number | null;
  via: "store" | "ssh";
  outcome: string;
  reason: string | null;
  message: string | null;
}

export type PushEvent =
  | ({ event: "plan" } & Pick<TargetResult, "host" | "action" | "decision" | "id" | "plan_hash" | "via">)
  | ({ event: "put" | "put_failed" | "delivered" } & Pick<TargetResult, "host" | "id" | "outcome" | "reason" | "message"> & { revision?: number })
  | { event: "status"; host: string; state: string; id: number | null; step: string | null; step_index: number | null; steps: number | null }
  | ({ event: "final" } & Pick<TargetResult, "host" | "id" | "outcome" | "reason">);

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
}

export interface PushSummary {
  push_id: number | null;
  ok: boolean;
  dry_run: boolean;
  counts: Record<string, number>;
  targets: TargetResult[];
}

const countBy = (results: TargetResult[]) => results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.outcome]: (acc[r.outcome] ?? 0) + 1 }), {});

/**
 * Decide per target (skip what already converged on this hash), issue ids, seal, deliver
 * concurrently with retries, optionally wait for the agents, and record every outcome.
 */
export const push = async (req: PushRequest, deps: PushDeps): Promise<PushSummary> => {
  const { db } = deps;
  const expected = db.expected();
  const converged = req.force ? new Set<string>() : await deps.converged(req.targets);
  const pushId = req.dryRun ? null : db.startPush({ store: deps.storeName, dryRun: false, force: req.force, operator: deps.operator, at: deps.now().getTime() });
  const record = (r: TargetResult) => {
    if (pushId !== null) db.recordResult(pushId, { host: r.host, id: r.id, planHash: r.plan_hash, outcome: r.outcome, reason: r.reason, message: r.message, at: deps.now().getTime() });
  };

  const results = req.targets.map((server): TargetResult => {
    const plan = req.plans.get(server.host)!;
    const decision = decideTarget(plan.hash, expected.get(server.host), converged.has(server.host), req.force);
    const via = req.viaSsh || !server.bootstrapped ? "ssh" : "store";
    const id = decision.action === "skip" ? expected.get(server.host)!.id : req.dryRun ? db.peekNextId(server.host, deps.now()) : null;
    return { host: server.host, action: decision.action, decision: decision.reason, id, plan_hash: plan.hash, bytes: plan.bytes.length, via, outcome: decision.action === "skip" ? "skipped" : req.dryRun ? "would_push" : "pending", reason: null, message: null };
  });

  if (!req.dryRun) {
    await mapLimit(req.targets, req.concurrency, async (server, i) => {
      const r = results[i]!;
      if (r.action === "skip") {
        deps.emit({ event: "plan", host: r.host, action: r.action, decision: r.decision, id: r.id, plan_hash: r.plan_hash, via: r.via });
        return record(r);
      }
      try {
        r.id = db.issueId(server.host, r.plan_hash, deps.now());
        deps.emit({ event: "plan", host: r.host, action: r.action, decision: r.decision, id: r.id, plan_hash: r.plan_hash, via: r.via });
        const envelope = sealEnvelope(req.plans.get(server.host)!.bytes, {
          id: r.id, target: server.host, nodePublicKey: loadNodePublicKey(server.nodeKey).publicKey,
          signers: deps.signers, expires: deps.now().getTime() + req.expiresInMs, issued: deps.now().getTime(),
        });
        r.bytes = envelope.length;
        if (r.via === "ssh") {
          if (!deps.deliverSsh) throw new FleetplanError("ssh_failed", "SSH delivery is not available");
          Object.assign(r, await deps.deliverSsh(server, envelope));
          deps.emit({ event: "delivered", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
        } else {
          const { revision } = await (await deps.store()).put(server.host, envelope);
          Object.assign(r, { outcome: "pushed" });
          deps.emit({ event: "put", host: r.host, id: r.id, outcome: r.outcome, reason: null, message: null, revision });
        }
      } catch (error) {
        Object.assign(r, { outcome: r.via === "ssh" ? "ssh_failed" : "put_failed", reason: reasonOf(error), message: (error as Error).message });
        deps.emit({ event: "put_failed", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason, message: r.message });
      }
      if (!req.wait || r.outcome !== "pushed") record(r);
    });
  } else {
    for (const r of results) deps.emit({ event: "plan", host: r.host, action: r.action, decision: r.decision, id: r.id, plan_hash: r.plan_hash, via: r.via });
  }

  const inFlight = results.filter((r) => r.outcome === "pushed");
  if (req.wait && inFlight.length > 0) {
    const outcomes = await waitForOutcomes(await deps.store(), new Map(inFlight.map((r) => [r.host, r.id!])), req.waitTimeoutMs, deps.emit);
    for (const r of inFlight) {
      Object.assign(r, outcomes.get(r.host) ?? { outcome: "timeout", reason: "timeout" });
      deps.emit({ event: "final", host: r.host, id: r.id, outcome: r.outcome, reason: r.reason });
      record(r);
    }
  }

  const good = new Set(req.wait ? ["succeeded", "skipped"] : ["pushed", "succeeded", "skipped", "would_push"]);
  const summary: PushSummary = { push_id: pushId, ok: results.every((r) => good.has(r.outcome)), dry_run: req.dryRun, counts: countBy(results), targets: results };
  if (pushId !== null) db.finishPush(pushId, deps.now().getTime(), { ok: summary.ok, counts: summary.counts });
  return summary;
};
