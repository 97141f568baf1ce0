import { parseEnvelope, verifySignatures } from "../shared/envelope.ts";
import type { TrustSet } from "../shared/types.ts";
import type { Expected } from "./db.ts";

/** What push does with one target, and why. */
export type Decision =
  | { action: "push"; reason: "new" | "changed" | "not_converged" | "drifted" | "forced" }
  | { action: "skip"; reason: "converged" };

/** The targets' verdicts before a push: converged hosts, and hosts whose applied files drifted (their own decision reason). */
export interface TargetStates {
  converged: ReadonlySet<string>;
  drifted: ReadonlySet<string>;
}

/** TargetStates from status rows (verdict.ts verdicts), or from a plain set of converged hosts. */
export const targetStates = (from: ReadonlySet<string> | readonly { host: string; verdict: string }[]): TargetStates => {
  if (!Array.isArray(from)) return { converged: from as ReadonlySet<string>, drifted: new Set() };
  const hosts = (verdict: string) => new Set(from.filter((r) => r.verdict === verdict).map((r) => r.host));
  return { converged: hosts("converged"), drifted: hosts("drifted") };
};

/**
 * Skip a target only when it already converged on exactly this plan hash; anything else —
 * never pushed, different plan, not converged, --force — gets a new id. A host whose files
 * drifted is pushed as `drifted` (the same plan re-asserts it); one that rebooted, failed or is
 * pending is `not_converged` (verdict.ts).
 */
export const decideTarget = (
  planHash: string,
  expected: Expected | undefined,
  converged: boolean,
  force: boolean,
  drifted = false,
): Decision => {
  if (force) return { action: "push", reason: "forced" };
  if (!expected) return { action: "push", reason: "new" };
  if (expected.planHash !== planHash) return { action: "push", reason: "changed" };
  if (converged) return { action: "skip", reason: "converged" };
  return { action: "push", reason: drifted ? "drifted" : "not_converged" };
};

/**
 * Why a host's current envelope in the store must not be replaced by our id, or null. Only an
 * envelope that verifies against our own admin keys counts: garbage or a foreign value in the
 * store must not be able to block pushes. An equal id counts too: an agent never takes one id
 * twice, so another coordinator's plan under it would be lost either way. Only an envelope for
 * this very host counts.
 */
export const keepNewer = (current: Uint8Array, target: { host: string; id: number }, trust: TrustSet): string | null => {
  const { host, id } = target;
  try {
    const parts = parseEnvelope(current);
    verifySignatures(parts, trust);
    // Our envelope for another host, copied here, is no reason to keep anything: the agent refuses it.
    if (parts.header.target !== host) return null;
    return parts.header.id >= id
      ? `the store already holds id ${parts.header.id} (not older than ${id}), signed by our admin key: another coordinator pushed since`
      : null;
  } catch {
    return null;
  }
};

/** Final states of a pushed target as seen in the status bucket. */
export const FINAL_OUTCOMES = new Set(["succeeded", "failed", "interrupted", "rejected", "superseded"]);

/**
 * The outcome of a pushed id given an agent's status, or null while it is still in flight.
 * `putAt` (unix ms) is when the envelope was put; see the id-less rejection below.
 */
export const outcomeFromStatus = (
  pushedId: number,
  putAt: number,
  status: { state: string; id: number | null; applied_id: number | null; result: string | null; since: number },
): { outcome: string; reason: string | null } | null => {
  if (status.applied_id === pushedId) return { outcome: "succeeded", reason: null };
  if (status.id === null) {
    // Rejected before the signatures verified (bad_signature, malformed, ...): the agent does not
    // repeat an unverified id, so this is only progress info, unauthenticated and throttled to 5 a
    // second per reason. One published since the put (agent clock) most likely refused ours.
    return status.state === "rejected" && status.since >= putAt ? { outcome: "rejected", reason: status.result } : null;
  }
  if (status.id > pushedId) return { outcome: "superseded", reason: `a newer id ${status.id} arrived` };
  if (status.id !== pushedId) return null;
  if (status.state === "rejected") return status.result === "duplicate" ? null : { outcome: "rejected", reason: status.result };
  if (status.state === "succeeded") return { outcome: "succeeded", reason: null };
  if (status.state === "failed" || status.state === "interrupted") return { outcome: status.state, reason: status.state };
  return null;
};
