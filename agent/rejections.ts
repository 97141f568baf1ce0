import type { EnvelopeError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import type { AgentStatus } from "../shared/types.ts";
import type { Ledger } from "./ledger.ts";
import type { AgentMetrics } from "./metrics.ts";

/**
 * Rejections decided before the signatures verified (docs/protocol.md steps 1–3), plus
 * `wrong_target` (a valid envelope for another host, copied here): what they claim, the id
 * above all, is not ours to report.
 */
const UNVERIFIED = new Set(["too_large", "malformed", "unsupported_version", "bad_signature", "untrusted_signer", "wrong_target"]);
/** Unsigned garbage can come in bulk: log each reason at most this often, with a count. */
const LOG_EVERY_MS = 60_000;
/**
 * ...and publish its status at most this often per reason (later ones in the window are
 * dropped, not delayed: a delayed "rejected" could land after a newer run's status). Short
 * enough that each push an operator makes (a wrong trust file refuses every one) ends its
 * `push --wait` as rejected; a flood of garbage costs at most 5 status writes a second per
 * reason, no more than its sender could write to the status bucket itself.
 */
const STATUS_EVERY_MS = 200;
/**
 * A signed envelope seen again (a replay: stale, expired or the one already accepted) is only
 * worth its first row and log line; copies are counted and throttled like garbage. This many
 * distinct envelopes are remembered.
 */
const REPLAYS_REMEMBERED = 1_024;

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
 * store can send unsigned garbage, or copies of an old signed envelope, at will, so for those
 * the ledger only counts (no row), the log line comes at most once a minute per reason and the
 * status update 5 times a second.
 */
export const createRejectionReporter = (deps: RejectionDeps) => {
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  const lastPublished = new Map<string, number>();

  const publishDue = (reason: string): boolean => {
    const at = lastPublished.get(reason);
    if (at !== undefined && deps.now() - at < STATUS_EVERY_MS) return false;
    lastPublished.set(reason, deps.now());
    return true;
  };

  const logOnce = (reason: string, fields: Record<string, unknown>): void => {
    const seen = lastLogged.get(reason);
    if (seen && deps.now() - seen.at < LOG_EVERY_MS) {
      seen.suppressed++;
      return;
    }
    lastLogged.set(reason, { at: deps.now(), suppressed: 0 });
    deps.log.warn("envelope_rejected", { ...fields, ...(seen?.suppressed && { suppressed_since_last: seen.suppressed }) });
  };

  const replays = new Set<string>();
  // True when this signed envelope was already rejected for this reason (oldest forgotten first).
  const isReplay = (reason: string, id: number | undefined, planHash: string | null): boolean => {
    const key = `${reason}:${id ?? ""}:${planHash ?? ""}`;
    if (replays.has(key)) return true;
    replays.add(key);
    if (replays.size > REPLAYS_REMEMBERED) replays.delete(replays.values().next().value!);
    return false;
  };

  return (error: EnvelopeError, meta: { source: string; revision: number | null }, planHash: string | null = null): void => {
    deps.metrics.envelopes.inc({ result: error.reason });
    const fields = { reason: error.reason, id: error.id ?? null, revision: meta.revision, source: meta.source, message: error.message };
    const verified = !UNVERIFIED.has(error.reason);
    const throttled = !verified || isReplay(error.reason, error.id, planHash);
    try {
      if (throttled) deps.ledger.countRejected(error.reason);
      else
        deps.ledger.recordSeen({
          id: error.id ?? null,
          planHash,
          signerIds: [],
          target: null,
          issued: null,
          expires: null,
          revision: meta.revision,
          source: meta.source,
          at: deps.now(),
          bootTime: deps.bootTime,
          reason: error.reason,
        });
    } catch (e) {
      deps.log.error("ledger_write_failed", { error: (e as Error).message });
    }
    if (error.reason === "duplicate") {
      if (!throttled) deps.log.info("envelope_duplicate", fields);
      return;
    }
    if (throttled) logOnce(error.reason, fields);
    else {
      deps.log.warn("envelope_rejected", fields);
      lastLogged.set(error.reason, { at: deps.now(), suppressed: 0 });
    }
    // A rejection never hides a run in progress, and an unverified id is never published as ours.
    if (!deps.running() && (!throttled || publishDue(error.reason))) {
      deps.publish("rejected", { id: verified ? (error.id ?? null) : null, plan_hash: verified ? planHash : null, result: error.reason });
    }
  };
};
