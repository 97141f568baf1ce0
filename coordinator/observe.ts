import type { ServerRow } from "./db.ts";
import { queryPrometheus, scrapeAgents } from "./metrics-source.ts";
import type { SourceResult } from "./metrics-source.ts";

export interface ObserveOptions {
  /** Prometheus base URL: one query for the whole fleet. Without it, agents are scraped directly. */
  prometheus?: string;
  now?: () => number;
}

/** What every agent reports, from Prometheus or a direct parallel scrape. */
export const observe = (servers: ServerRow[], opts: ObserveOptions): Promise<SourceResult> => {
  const targets = servers.map((s) => ({ host: s.host, metricsUrl: s.metricsUrl }));
  const now = opts.now ?? Date.now;
  return opts.prometheus ? queryPrometheus(opts.prometheus, targets, { now }) : scrapeAgents(targets, { now });
};
