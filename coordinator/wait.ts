import type { PlanStore } from "../shared/types.ts";
import { outcomeFromStatus } from "./decide.ts";
import type { PushEvent } from "./push.ts";

/**
 * Follow the status bucket until every pushed host reports a final outcome for its id,
 * or the timeout passes. Emits every status change as progress.
 */
export const waitForOutcomes = async (
  store: PlanStore,
  pushed: Map<string, number>,
  timeoutMs: number,
  emit: (e: PushEvent) => void,
): Promise<Map<string, { outcome: string; reason: string | null }>> => {
  const outcomes = new Map<string, { outcome: string; reason: string | null }>();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    await store.watchStatuses((status) => {
      const id = pushed.get(status.host);
      if (id === undefined || outcomes.has(status.host)) return;
      emit({ event: "status", host: status.host, state: status.state, id: status.id, step: status.step, step_index: status.step_index, steps: status.steps });
      const outcome = outcomeFromStatus(id, status);
      if (outcome) outcomes.set(status.host, outcome);
      if (outcomes.size === pushed.size) abort.abort();
    }, abort.signal);
  } finally {
    clearTimeout(timer);
  }
  return outcomes;
};
