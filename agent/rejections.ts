import type { EnvelopeError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import type { AgentStatus } from "../shared/types.ts";
import type { Ledger } from "./ledger.ts";
import type { AgentMetrics } from "./metrics.ts";

/**
 * Rejections decided before the signatures verified (PROTOCOL.md steps 1–3), plus
 * `wrong_target` (a valid envelope for another host, copied here): what they claim, the id
 * above all, is not ours to report.
 */
const UNVERIFIED = new Set(["too_large", "malformed", "unsupported_version", "bad_signature", "untrusted_signer", "wrong_target"]);
/** Unsigned garbage can come in bulk: log each reason at most this often, with a count. */
const LOG_EVERY_MS = 60_000;

export interface RejectionDeps {
  ledger: Ledger;
  metrics: AgentMetrics;
  log: Logger;
  now: () => number;
  bootTime: number;
  publish: (state: AgentStatus["state"], fields: Partial<AgentStatus>) => void;
  running: () => boolean;
}

/**
 * Count, log and record one rejection, and change nothing else. Anyone who can write to the
 * store can send unsigned garbage at will, so for those the ledger only counts (no row), and
 * the log line and status update come at most once a minute per reason.
 */
export const createRejectionReporter = (deps: RejectionDeps) => {
  const lastLogged = new Map<string, { at: number; suppressed: number }>();

  const logOnce = (reason: string, fields: Record<string, unknown>): boolean => {
    const seen = lastLogged.get(reason);
    if (seen && deps.now() - seen.at < LOG_EVERY_MS) {
      seen.suppressed++;
      return false;
    }
    lastLogged.set(reason, { at: deps.now(), suppressed: 0 });
    deps.log.warn("envelope_rejected", { ...fields, ...(seen?.suppressed && { suppressed_since_last: seen.suppressed }) });
    return true;
  };

  return (error: EnvelopeError, meta: { source: string; revision: number | null }, planHash: string | null = null): void => {
    deps.metrics.envelopes.inc({ result: error.reason });
    const fields = { reason: error.reason, id: error.id ?? null, revision: meta.revision, source: meta.source, message: error.message };
    const unverified = UNVERIFIED.has(error.reason);
    try {
      if (unverified) deps.ledger.countRejected(error.reason);
      else deps.ledger.recordSeen({ id: error.id ?? null, planHash, signerIds: [], target: null, issued: null, expires: null, revision: meta.revision, source: meta.source, at: deps.now(), bootTime: deps.bootTime, reason: error.reason });
    } catch (e) {
      deps.log.error("ledger_write_failed", { error: (e as Error).message });
    }
    if (error.reason === "duplicate") {
      deps.log.info("envelope_duplicate", fields);
      return;
    }
    const reported = unverified ? logOnce(error.reason, fields) : (deps.log.warn("envelope_rejected", fields), true);
    // A rejection never hides a run in progress, and an unverified id is never published as ours.
    if (reported && !deps.running()) {
      deps.publish("rejected", { id: unverified ? null : error.id ?? null, plan_hash: unverified ? null : planHash, result: error.reason });
    }
  };
};
