// Freeze detection on the agent: read this host's freshness record, verify it with the current
// trust, and export when it expires and whether it names an id this agent never received.
import { reasonOf } from "../shared/errors.ts";
import type { Freshness } from "../shared/freshness.ts";
import { verifyFreshness } from "../shared/freshness.ts";
import type { Logger } from "../shared/log.ts";
import { sideKey } from "../shared/trust-layout.ts";
import type { PlanFeed, StoreConfig, TrustSet } from "../shared/types.ts";
import type { AgentMetrics } from "./metrics.ts";

/** 1 when the coordinator issued an id above the highest this agent accepted (pure). */
export const missingUpdate = (record: Freshness | null, acceptedId: number): number => (record && record.latest_id > acceptedId ? 1 : 0);

/** Follow this host's freshness record; `update()` recomputes missing_update after an envelope was accepted. */
export const createFreshnessWatch = (deps: {
  host: string;
  store: Pick<StoreConfig, "kind">;
  feed: PlanFeed | null;
  trust: () => TrustSet;
  acceptedId: () => number;
  metrics: AgentMetrics;
  log: Logger;
  now: () => number;
  skewMs: number;
}) => {
  let last: Freshness | null = null;
  const update = (): void => {
    deps.metrics.missingUpdate.set(missingUpdate(last, deps.acceptedId()));
  };
  const refresh = async (): Promise<void> => {
    if (!deps.feed?.readSide) return;
    try {
      const bytes = await deps.feed.readSide(sideKey(deps.store, { kind: "fresh", host: deps.host }));
      if (!bytes) return;
      const record = verifyFreshness(bytes, { host: deps.host, trust: deps.trust(), now: deps.now(), skewMs: deps.skewMs });
      // A replayed older record must not hide a newer one's news.
      if (last && record.issued <= last.issued) return;
      last = record;
      deps.metrics.freshnessExpires.set(record.expires / 1000);
      update();
      if (record.latest_id > deps.acceptedId())
        deps.log.warn("update_missing", { latest_id: record.latest_id, accepted_id: deps.acceptedId() });
    } catch (error) {
      deps.log.warn("freshness_refused", { reason: reasonOf(error), error: (error as Error).message });
    }
  };
  return { refresh, update };
};
