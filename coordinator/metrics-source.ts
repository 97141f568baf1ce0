import { FleetplanError } from "../shared/errors.ts";
import { mapLimit } from "../shared/pool.ts";
import { withRetry } from "../shared/retry.ts";
import { describeFailure, HttpStatusError, requestText } from "./metrics-http.ts";
import { parseAgentMetrics, reportedFromSamples, AGENT_METRIC_PREFIX } from "./metrics-parse.ts";
import type { Reported, Sample } from "./metrics-parse.ts";

// Where `status` gets each agent's reported state: a direct parallel scrape of every agent's
// /metrics, or one Prometheus query for the whole fleet. Both answer per host, and a host they
// cannot answer for is absent from `reported` and named in `errors` (never an exception).

export interface MetricsTarget {
  host: string;
  metricsUrl: string | null;
}

export interface SourceResult {
  reported: Map<string, Reported>;
  /** host → why there is no data for it */
  errors: Map<string, string>;
}

export interface ScrapeOptions {
  /** Per attempt, ms (default 2000). */
  timeoutMs?: number;
  /** Scrapes in flight at once (default 64). */
  concurrency?: number;
  /** Attempts per agent, with jittered backoff between them (default 2). */
  attempts?: number;
  now?: () => number;
}

export interface PrometheusOptions {
  /** For the whole query, ms (default 10000). */
  timeoutMs?: number;
  /**
   * How far back to look for an agent's last samples, ms (default 1 h): data older than this is
   * absent (`unknown`), so pass more than status's max age for old data to show as `stale-data`.
   */
  lookbackMs?: number;
  /**
   * Subquery resolution for the last-sample time of agents no longer scraped (default
   * lookback/60, at least 1 s): such an agent's age reads up to one step too old. Prometheus'
   * cost grows with lookback/step (measured, 1,000 agents: 60 steps ~0.3-1 s, 3,600 steps ~8 s).
   */
  stepMs?: number;
  now?: () => number;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** ~200 B of JSON per series, 10 series per agent: room for far more than 10,000 agents. */
const MAX_PROMETHEUS_BYTES = 256 * 1024 * 1024;
const EXPOSITION = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/** Scrape every agent's /metrics directly, in parallel with a bound. */
export const scrapeAgents = async (targets: readonly MetricsTarget[], opts: ScrapeOptions = {}): Promise<SourceResult> => {
  const { timeoutMs = 2000, concurrency = 64, attempts = 2, now = Date.now } = opts;
  const result: SourceResult = { reported: new Map(), errors: new Map() };
  await mapLimit(targets, concurrency, async ({ host, metricsUrl }) => {
    if (metricsUrl === null) {
      result.errors.set(host, "no metrics URL in the inventory");
      return;
    }
    try {
      const reported = await withRetry(
        async () => parseAgentMetrics(await requestText(metricsUrl, { timeoutMs, maxBytes: MAX_BODY_BYTES, accept: EXPOSITION }), now()),
        {
          attempts,
          initialMs: 100,
          maxMs: 1000,
          isPermanent: (e) => e instanceof FleetplanError || (e instanceof HttpStatusError && e.permanent),
        },
      );
      result.reported.set(host, reported);
    } catch (error) {
      result.errors.set(host, `${metricsUrl}: ${describeFailure(error)}`);
    }
  });
  return result;
};

// One instant query answers for the whole fleet. A plain `{__name__=~"fleetplan_agent_..."}`
// would not do: its sample times are the evaluation time, and once a target stops answering
// Prometheus writes staleness markers, so the host would vanish instead of showing old data.
// Instead, per metric, `last_over_time(m[lookback])` gives the last real value (range selectors
// skip staleness markers). `or` matches series on their labels without __name__ (which some
// versions drop here anyway), so one agent's terms would shadow each other: label_replace tags
// each term with a distinct `fleetplan_series` value. The data's age comes from
// `timestamp(fleetplan_agent_running)` — the real sample time, exact while the target is
// scraped — or, once it is not, from the max of the same over a subquery, which is the last
// sample's time to within one subquery step. fleetplan_agent_info (whose metrics these are) is
// `timestamp(info) or last_over_time(info[lookback])`: should the agent's identity have changed
// within the lookback, the live series reads its sample time and the lingering one 1.
const SERIES = [
  "provisioning_id",
  "accepted_provisioning_id",
  "plan_info",
  "boot_time_seconds",
  "applied_boot_time_seconds",
  "last_run_success",
  "last_run_timestamp_seconds",
  "running",
  "drifted_files",
] as const;
const TAG = "fleetplan_series";
const SAMPLE_TIME = "sample_timestamp";
const INFO = "info";
/** Prometheus' own `up == 0` for a target: the agent is not answering now, whatever its last samples said. */
const DOWN = "down";

const tag = (expr: string, value: string) => `label_replace(${expr}, "${TAG}", "${value}", "", "")`;

/** The single PromQL expression queryPrometheus sends. */
export const fleetQuery = (lookbackMs: number, stepMs: number): string => {
  const window = `${Math.max(1, Math.ceil(lookbackMs / 1000))}s`;
  const step = `${Math.max(1, Math.round(stepMs / 1000))}s`;
  const clock = `timestamp(${AGENT_METRIC_PREFIX}running)`;
  const terms = SERIES.map((s) => tag(`last_over_time(${AGENT_METRIC_PREFIX}${s}[${window}])`, s));
  terms.push(tag(`timestamp(${AGENT_METRIC_PREFIX}${INFO}) or last_over_time(${AGENT_METRIC_PREFIX}${INFO}[${window}])`, INFO));
  terms.push(tag(`${clock} or max_over_time(${clock}[${window}:${step}])`, SAMPLE_TIME));
  terms.push(tag("up == 0", DOWN));
  return terms.join(" or ");
};

interface PromVectorItem {
  metric: Record<string, string>;
  value: [number, string];
}

/** Which server a series belongs to: `host` label, else instance = metrics URL host:port, else instance's host part. */
const hostMatcher = (targets: readonly MetricsTarget[]) => {
  const hosts = new Set(targets.map((t) => t.host));
  const byInstance = new Map<string, string | null>();
  for (const { host, metricsUrl } of targets) {
    if (metricsUrl === null) continue;
    const instance = new URL(metricsUrl).host;
    // Several servers behind one host:port cannot be told apart by instance: match none of them.
    byInstance.set(instance, byInstance.has(instance) ? null : host);
  }
  return (labels: Record<string, string>): string | null => {
    if (labels.host !== undefined && hosts.has(labels.host)) return labels.host;
    const instance = labels.instance ?? "";
    const exact = byInstance.get(instance);
    if (exact) return exact;
    const bare = instance.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
    return hosts.has(bare) ? bare : null;
  };
};

const OWN_LABELS: Record<string, readonly string[]> = {
  plan_info: ["plan_hash", "provisioning_id"],
  [INFO]: ["version", "store", "host", "node_key_id"],
};

/**
 * A series' own labels, apart from its target's. Where a target label has the same name (e.g.
 * a `host` target label), Prometheus renames the exposed one `exported_<name>`.
 */
const splitLabels = (series: string, metric: Record<string, string>) => {
  const target = { ...metric };
  const own: Record<string, string> = {};
  for (const name of OWN_LABELS[series] ?? []) {
    const key = `exported_${name}` in metric ? `exported_${name}` : name;
    if (metric[key] === undefined) continue;
    own[name] = metric[key];
    delete target[key];
  }
  // Some versions keep __name__ through last_over_time, some drop it: it names no target.
  delete target[TAG];
  delete target.__name__;
  return { target, own };
};

/** Group the vector by scrape target: its labels minus the tag and each series' own labels. */
const groupByTarget = (items: readonly PromVectorItem[]) => {
  const groups = new Map<string, { labels: Record<string, string>; samples: Sample[]; at: number | null; down: boolean }>();
  for (const { metric, value } of items) {
    const series = metric[TAG];
    if (series === undefined) continue;
    const { target, own } = splitLabels(series, metric);
    const key = JSON.stringify(Object.entries(target).sort(([a], [b]) => a.localeCompare(b)));
    const group = groups.get(key) ?? { labels: target, samples: [], at: null, down: false };
    groups.set(key, group);
    const v = Number(value[1]);
    if (series === SAMPLE_TIME) group.at = Math.round(v * 1000);
    else if (series === DOWN) group.down = true;
    else group.samples.push({ name: AGENT_METRIC_PREFIX + series, labels: own, value: v });
  }
  return [...groups.values()];
};

/** Ask Prometheus once for every agent's last reported state and its real sample time. */
export const queryPrometheus = async (
  baseUrl: string,
  targets: readonly MetricsTarget[],
  opts: PrometheusOptions = {},
): Promise<SourceResult> => {
  const { timeoutMs = 10_000, lookbackMs = 3_600_000, now = Date.now } = opts;
  const stepMs = opts.stepMs ?? Math.max(1000, lookbackMs / 60);
  const url = new URL("api/v1/query", baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
  const form = new URLSearchParams({ query: fleetQuery(lookbackMs, stepMs), time: String(now() / 1000) });
  let doc: { status?: string; error?: string; data?: { resultType?: string; result?: PromVectorItem[] } };
  try {
    doc = JSON.parse(await requestText(url.toString(), { timeoutMs, maxBytes: MAX_PROMETHEUS_BYTES, form, accept: "application/json" }));
  } catch (error) {
    throw new FleetplanError("metrics_unavailable", `Prometheus query at ${url.origin} failed: ${describeFailure(error)}`, {
      cause: error,
    });
  }
  if (doc.status !== "success" || doc.data?.resultType !== "vector" || !Array.isArray(doc.data.result)) {
    throw new FleetplanError(
      "metrics_unavailable",
      `Prometheus at ${url.origin} answered ${doc.status ?? "?"}: ${doc.error ?? "unexpected result"}`,
    );
  }
  const hostOf = hostMatcher(targets);
  const result: SourceResult = { reported: new Map(), errors: new Map() };
  // An agent scraped only between two subquery instants and then stopped has values but no
  // sample time: its samples are newer than the last instant but one, so date them there
  // (conservatively old, so such data reads stale-data rather than vanishing).
  const floorAt = Math.floor(now() / stepMs) * stepMs - stepMs;
  // A target Prometheus scrapes and finds down has no data, as a direct scrape of it would (same verdict either way).
  const down = new Map<string, string>();
  for (const group of groupByTarget(doc.data.result)) {
    const host = hostOf(group.labels);
    if (host === null || group.samples.length === 0) continue;
    group.at ??= floorAt;
    if (group.down) {
      const last = new Date(group.at).toISOString();
      down.set(host, `Prometheus finds ${group.labels.instance ?? "its target"} down (up == 0; last sample ${last})`);
      continue;
    }
    // The same agent scraped by two jobs: the fresher data wins.
    if ((result.reported.get(host)?.scrapedAt ?? -Infinity) >= group.at) continue;
    result.reported.set(host, reportedFromSamples(group.samples, group.at));
  }
  for (const { host } of targets) {
    if (!result.reported.has(host)) {
      const none = `no fleetplan_agent series in Prometheus within the last ${Math.round(lookbackMs / 1000)} s`;
      result.errors.set(host, down.get(host) ?? none);
    }
  }
  return result;
};
