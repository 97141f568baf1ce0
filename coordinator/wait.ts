import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "../shared/retry.ts";
import type { PlanStore, StatusRecord } from "../shared/types.ts";
import { outcomeFromStatus } from "./decide.ts";
import type { PushEvent } from "./push.ts";
import { countRefused } from "./status-evidence.ts";
import type { StatusEvidence } from "./status-evidence.ts";

/** How soon a dropped status watch is followed again: jittered, at most this far apart. */
const REWATCH = { initialMs: 250, maxMs: 5_000 };

export interface WaitOptions {
  /** Stop waiting early (SIGINT): hosts without an outcome are simply missing from the result. */
  signal?: AbortSignal;
  /** Told before each re-watch; `error` is null when the watch just ended. */
  onRetry?: (error: unknown, delayMs: number) => void;
}

export interface WaitResult {
  outcomes: Map<string, { outcome: string; reason: string | null }>;
  /** Records about pushed hosts that were not evidence, by reason (see status-evidence.ts), plus `stale`. */
  refused: Record<string, number>;
}

/**
 * Follow the status bucket until every pushed host reports a final outcome for its id, the
 * timeout passes or the signal aborts. Only records `verify` accepts are believed, and never one
 * older (signed `since`) than a record already seen from the same host; every other record about a
 * pushed host is emitted as `status_refused` and counted. Emits every believed status as progress. `putAt` (unix ms)
 * is when the host's envelope was put: rejections the agent could not tie to an id count only
 * from then on. A watch that ends or fails (the store connection dropped) is started again,
 * with backoff, until the deadline: a store restart must not read as a timeout.
 */
export const waitForOutcomes = async (
  store: PlanStore,
  pushed: Map<string, { id: number; putAt: number }>,
  verify: (record: StatusRecord) => StatusEvidence,
  timeoutMs: number,
  emit: (e: PushEvent) => void,
  options: WaitOptions = {},
): Promise<WaitResult> => {
  const outcomes = new Map<string, { outcome: string; reason: string | null }>();
  const newest = new Map<string, number>();
  let refused: Record<string, number> = {};
  const refuse = (host: string, claimed: string | null, reason: string) => {
    refused = countRefused(refused, reason);
    emit({ event: "status_refused", host, claimed_host: claimed, reason });
  };
  const done = new AbortController();
  const timer = setTimeout(() => done.abort(), timeoutMs);
  const stop = options.signal ? AbortSignal.any([done.signal, options.signal]) : done.signal;
  let failures = 0;
  const onRecord = (record: StatusRecord) => {
    failures = 0;
    const checked = verify(record);
    if (!checked.ok) {
      // About a pushed host by its store key or by what it claims: an attempt to pass for it.
      const aboutPushed = pushed.has(record.key) || (checked.claimedHost !== null && pushed.has(checked.claimedHost));
      if (aboutPushed) refuse(record.key, checked.claimedHost, checked.reason);
      return;
    }
    const { status } = checked;
    const target = pushed.get(record.key);
    if (target === undefined || outcomes.has(record.key)) return;
    // A replayed older record of this very host must not move its state backwards.
    if (status.since < (newest.get(record.key) ?? -Infinity)) return refuse(record.key, status.host, "stale");
    newest.set(record.key, status.since);
    emit({ event: "status", host: record.key, state: status.state, id: status.id, step_index: status.step_index, steps: status.steps });
    const outcome = outcomeFromStatus(target.id, target.putAt, status);
    if (outcome) outcomes.set(record.key, outcome);
    if (outcomes.size === pushed.size) done.abort();
  };
  try {
    while (!stop.aborted) {
      const error = await store.watchStatuses(onRecord, stop).then(() => null, (e: unknown) => e);
      if (stop.aborted) break;
      const delayMs = backoffDelay(failures++, REWATCH);
      options.onRetry?.(error, delayMs);
      await sleep(delayMs, undefined, { signal: stop }).catch(() => undefined);
    }
  } finally {
    clearTimeout(timer);
  }
  return { outcomes, refused };
};
