import { FleetplanError } from "../shared/errors.ts";

// Just enough of the Prometheus text exposition format (0.0.4) to read an agent's state:
// `name{label="value",...} value [timestamp]`, `#` lines, escaped label values.

/** One series' sample. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What an agent reports about itself; ids and times are null when the agent has none yet. */
export interface Reported {
  /** Last successfully applied id (fleetplan_agent_provisioning_id). */
  appliedId: number | null;
  /** Highest id ever accepted (fleetplan_agent_accepted_provisioning_id). */
  acceptedId: number | null;
  /** Hash of the applied plan, from fleetplan_agent_plan_info{plan_hash,provisioning_id}. */
  planHash: string | null;
  /** 1 or 0; null when no run has finished yet. */
  lastRunSuccess: number | null;
  /** unix seconds */
  lastRunTimestamp: number | null;
  /** unix seconds, this boot */
  bootTime: number | null;
  /** unix seconds, the boot during which the applied plan ran */
  appliedBootTime: number | null;
  running: boolean;
  /** Files of the applied plan the agent found changed at its last check (fleetplan_agent_drifted_files); null from older agents. */
  driftedFiles: number | null;
  /** The agent's own hostname and node key id (fleetplan_agent_info); null when it names none, or several. */
  host: string | null;
  nodeKeyId: string | null;
  /** unix ms of the data: the scrape, or Prometheus' sample timestamp */
  scrapedAt: number;
}

export const AGENT_METRIC_PREFIX = "fleetplan_agent_";
const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;
const ESCAPES: Record<string, string> = { "\\": "\\", '"': '"', n: "\n" };

const malformed = (line: number, why: string): never => {
  throw new FleetplanError("malformed", `metrics line ${line}: ${why}`);
};

/** Go's ParseFloat spellings as used by exporters: NaN, ±Inf, decimals and exponents. */
export const parseSampleValue = (text: string): number => {
  const lower = text.toLowerCase();
  if (lower === "nan") return NaN;
  if (lower === "+inf" || lower === "inf") return Infinity;
  if (lower === "-inf") return -Infinity;
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : NaN;
};

const skipBlanks = (text: string, at: number): number => {
  let i = at;
  while (text[i] === " " || text[i] === "\t") i++;
  return i;
};

const readToken = (re: RegExp, text: string, at: number): string | null => {
  re.lastIndex = at;
  return re.exec(text)?.[0] ?? null;
};

/** Parse `{a="x",b="y\"z"}` starting at `at` (the `{`); returns labels and the index after `}`. */
const parseLabels = (text: string, at: number, line: number): [Record<string, string>, number] => {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    i = skipBlanks(text, i);
    if (text[i] === "}") return [labels, i + 1];
    const name = readToken(LABEL_NAME, text, i) ?? malformed(line, "bad label name");
    i = skipBlanks(text, i + name.length);
    if (text[i] !== "=") malformed(line, `label ${name} needs ="value"`);
    i = skipBlanks(text, i + 1);
    if (text[i] !== '"') malformed(line, `label ${name} needs ="value"`);
    let value = "";
    for (i++; text[i] !== '"'; i++) {
      if (i >= text.length) malformed(line, "unterminated label value");
      if (text[i] === "\\") value += ESCAPES[text[++i] ?? ""] ?? malformed(line, "bad escape in label value");
      else value += text[i];
    }
    labels[name] = value;
    i = skipBlanks(text, i + 1);
    if (text[i] === ",") i++;
    else if (text[i] !== "}") malformed(line, "expected , or } after a label");
  }
};

/** Every sample in an exposition body; a line that does not parse is an error naming it. */
export const parseExposition = (text: string): Sample[] => {
  const samples: Sample[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const n = index + 1;
    const name = readToken(NAME, line, 0) ?? malformed(n, "bad metric name");
    let [labels, rest]: [Record<string, string>, number] = [{}, skipBlanks(line, name.length)];
    if (line[rest] === "{") [labels, rest] = parseLabels(line, rest, n);
    const fields = line.slice(rest).trim().split(/\s+/);
    if (fields.length < 1 || fields.length > 2 || fields[0] === "") malformed(n, "expected a value and an optional timestamp");
    const value = parseSampleValue(fields[0]!);
    if (Number.isNaN(value) && fields[0]!.toLowerCase() !== "nan") malformed(n, `bad value ${JSON.stringify(fields[0]!.slice(0, 40))}`);
    samples.push({ name, labels, value });
  });
  return samples;
};

const positive = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) && v > 0 ? v : null);
const safeId = (v: number | undefined): number | null => {
  const p = positive(v);
  return p !== null && Number.isSafeInteger(p) ? p : null;
};

/**
 * Whose metrics these are, from fleetplan_agent_info. An exposition has one series (value 1);
 * from Prometheus a live series carries its sample time and lingering old ones 1, so the
 * highest value is the current identity. A tie between different identities names none.
 */
const identityOf = (samples: readonly Sample[]): { host: string | null; nodeKeyId: string | null } => {
  const infos = samples.filter((s) => s.name === `${AGENT_METRIC_PREFIX}info` && s.value >= 1);
  const top = Math.max(...infos.map((s) => s.value));
  const [first, ...rest] = infos
    .filter((s) => s.value === top)
    .map((s) => ({ host: s.labels.host || null, nodeKeyId: s.labels.node_key_id || null }));
  if (first === undefined || rest.some((o) => o.host !== first.host || o.nodeKeyId !== first.nodeKeyId))
    return { host: null, nodeKeyId: null };
  return first;
};

/** The agent's state from its samples (an exposition, or a Prometheus query result). */
export const reportedFromSamples = (samples: readonly Sample[], scrapedAt: number): Reported => {
  const plain = new Map<string, number>();
  for (const s of samples) if (Object.keys(s.labels).length === 0 && !plain.has(s.name)) plain.set(s.name, s.value);
  const get = (suffix: string) => plain.get(AGENT_METRIC_PREFIX + suffix);
  const appliedId = safeId(get("provisioning_id"));
  // The agent keeps one plan_info series; should an old one linger, the applied id's wins, then the newest.
  const infos = samples
    .filter((s) => s.name === `${AGENT_METRIC_PREFIX}plan_info` && s.value === 1 && s.labels.plan_hash !== undefined)
    .map((s) => ({ id: Number(s.labels.provisioning_id), hash: s.labels.plan_hash! }))
    .sort((a, b) => Number(b.id === appliedId) - Number(a.id === appliedId) || b.id - a.id);
  const lastRunTimestamp = positive(get("last_run_timestamp_seconds"));
  const success = get("last_run_success");
  const drifted = get("drifted_files");
  return {
    appliedId,
    acceptedId: safeId(get("accepted_provisioning_id")),
    planHash: infos[0]?.hash ?? null,
    // A gauge reads 0 before any run finished: without a run time, "last run failed" would be a lie.
    lastRunSuccess: lastRunTimestamp === null || success === undefined || Number.isNaN(success) ? null : success,
    lastRunTimestamp,
    bootTime: positive(get("boot_time_seconds")),
    appliedBootTime: positive(get("applied_boot_time_seconds")),
    running: get("running") === 1,
    driftedFiles: drifted === undefined || !Number.isFinite(drifted) || drifted < 0 ? null : drifted,
    ...identityOf(samples),
    scrapedAt,
  };
};

/** Parse an agent's /metrics body; a body with no fleetplan_agent_ series is not an agent. */
export const parseAgentMetrics = (text: string, scrapedAt: number): Reported => {
  const samples = parseExposition(text);
  if (!samples.some((s) => s.name.startsWith(AGENT_METRIC_PREFIX))) {
    throw new FleetplanError("malformed", "no fleetplan_agent_* metrics in the response: is this a fleetplan agent?");
  }
  return reportedFromSamples(samples, scrapedAt);
};
