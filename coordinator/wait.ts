import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "../shared/retry.ts";
import type { AgentStatus, PlanStore } from "../shared/types.ts";
import { outcomeFromStatus } from "./decide.ts";
import type { PushEvent } from "./push.ts";

/** How soon a dropped status watch is followed again: jittered, at most this far apart. */
const REWATCH = { initialMs: 250, maxMs: 5_000 };

export interface WaitOptions {
  /** Stop waiting early (SIGINT): hosts without an outcome are simply missing from the result. */
  signal?: AbortSignal;
  /** Told before each re-watch; `error` is null when the watch just ended. */
  onRetry?: (error: unknown, delayMs: number) => void;
}

/**
 * Follow the status bucket until every pushed host reports a final outcome for its id, the
 * timeout passes or the signal aborts. Emits every status change as progress. `putAt` (unix ms)
 * is when the host's envelope was put: rejections the agent could not tie to an id count only
 * from then on. A watch that ends or fails (the store connection dropped) is started again,
 * with backoff, until the deadline: a store restart must not read as a timeout.
 */
export const waitForOutcomes = async (
  store: PlanStore,
  pushed: Map<string, { id: number; putAt: number }>,
  timeoutMs: number,
  emit: (e: PushEvent) => void,
  options: WaitOptions = {},
): Promise<Map<string, { outcome: string; reason: string | null }>> => {
  const outcomes = new Map<string, { outcome: string; reason: string | null }>();
  const done = new AbortController();
  const timer = setTimeout(() => done.abort(), timeoutMs);
  const stop = options.signal ? AbortSignal.any([done.signal, options.signal]) : done.signal;
  let failures = 0;
  const onStatus = (status: AgentStatus) => {
    failures = 0;
    const target = pushed.get(status.host);
    if (target === undefined || outcomes.has(status.host)) return;
    emit({ event: "status", host: status.host, state: status.state, id: status.id, step: status.step, step_index: status.step_index, steps: status.steps });
    const outcome = outcomeFromStatus(target.id, target.putAt, status);
    if (outcome) outcomes.set(status.host, outcome);
    if (outcomes.size === pushed.size) done.abort();
  };
  try {
    while (!stop.aborted) {
      const error = await store.watchStatuses(onStatus, stop).then(() => null, (e: unknown) => e);
      if (stop.aborted) break;
      const delayMs = backoffDelay(failures++, REWATCH);
      options.onRetry?.(error, delayMs);
      await sleep(delayMs, undefined, { signal: stop }).catch(() => undefined);
    }
  } finally {
    clearTimeout(timer);
  }
  return outcomes;
};
