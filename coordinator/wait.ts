import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "../shared/retry.ts";
import type { PlanStore, StatusRecord } from "../shared/types.ts";
import { outcomeFromStatus } from "./decide.ts";
import type { PushEvent } from "./push.ts";
import { countRefused, failureOf } from "./status-evidence.ts";
import type { StatusEvidence } from "./status-evidence.ts";

/** How soon a dropped status watch is followed again: jittered, at most this far apart. */
const REWATCH = { initialMs: 250, maxMs: 5_000 };

export interface WaitOptions {
  /** Stop waiting early (SIGINT): hosts without an outcome are simply missing from the result. */
  signal?: AbortSignal;
  /** Told before each re-watch; `error` is null when the watch just ended. */
  onRetry?: (error: unknown, delayMs: number) => void;
  /** Is the host's agent up (its metrics answer)? null: cannot tell (no metrics URL). See agent-probe.ts. */
  probe?: (host: string) => Promise<boolean | null>;
  /** Probe interval and how many misses in a row, with no status update between, end a host as `agent_down`. */
  probeEveryMs?: number;
  downAfter?: number;
}

/** Defaults: 3 misses 2 s apart, ~6 s of silence, well above an agent restart. */
const PROBE_EVERY_MS = 2_000;
const DOWN_AFTER = 3;

export interface WaitResult {
  /** `message` says where a failed run failed (step, exit code) when the agent's status tells. */
  outcomes: Map<string, { outcome: string; reason: string | null; message?: string }>;
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
  const outcomes: WaitResult["outcomes"] = new Map();
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
  const misses = new Map<string, number>();
  // When each host was last heard from (a believed status): only a host silent for a probe interval is probed.
  const started = performance.now();
  const heard = new Map([...pushed.keys()].map((h) => [h, started]));
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
    misses.delete(record.key);
    heard.set(record.key, performance.now());
    emit({ event: "status", host: record.key, state: status.state, id: status.id, step_index: status.step_index, steps: status.steps });
    const outcome = outcomeFromStatus(target.id, target.putAt, status);
    const failure = outcome?.outcome === "failed" ? failureOf(status) : null;
    if (outcome) outcomes.set(record.key, failure ? { ...outcome, ...failure } : outcome);
    if (outcomes.size === pushed.size) done.abort();
  };
  const probing = options.probe
    ? probeAgents(options, heard, outcomes, misses, stop, () => {
        if (outcomes.size === pushed.size) done.abort();
      })
    : Promise.resolve();
  try {
    while (!stop.aborted) {
      const error = await store.watchStatuses(onRecord, stop).then(
        () => null,
        (e: unknown) => e,
      );
      if (stop.aborted) break;
      const delayMs = backoffDelay(failures++, REWATCH);
      options.onRetry?.(error, delayMs);
      await sleep(delayMs, undefined, { signal: stop }).catch(() => undefined);
    }
  } finally {
    clearTimeout(timer);
    done.abort();
    await probing;
  }
  return { outcomes, refused };
};

// Every probeEveryMs, probe each host still in flight and silent since the last round; `downAfter` misses in a row
// (a status update resets the count) end it as agent_down: a dead agent is reported in seconds, not after --timeout.
// Hosts that just reported are not probed: on a large push, a scrape per busy agent would slow every agent down.
const probeAgents = async (
  options: WaitOptions,
  heard: Map<string, number>,
  outcomes: WaitResult["outcomes"],
  misses: Map<string, number>,
  stop: AbortSignal,
  settled: () => void,
): Promise<void> => {
  const everyMs = options.probeEveryMs ?? PROBE_EVERY_MS;
  const downAfter = options.downAfter ?? DOWN_AFTER;
  while (!stop.aborted) {
    await sleep(everyMs, undefined, { signal: stop }).catch(() => undefined);
    if (stop.aborted) return;
    const silentSince = performance.now() - everyMs;
    const open = [...heard].flatMap(([h, at]) => (outcomes.has(h) || at > silentSince ? [] : [h]));
    const answers = await Promise.all(open.map(async (h) => [h, await options.probe!(h)] as const));
    if (stop.aborted) return;
    for (const [host, up] of answers) {
      if (up !== false || outcomes.has(host)) {
        misses.delete(host);
        continue;
      }
      const n = (misses.get(host) ?? 0) + 1;
      misses.set(host, n);
      if (n < downAfter) continue;
      const message = `agent metrics unreachable ${n} times in a row (${everyMs / 1000} s apart) and no status since: the agent is down`;
      outcomes.set(host, { outcome: "agent_down", reason: "agent_down", message });
    }
    settled();
  }
};
