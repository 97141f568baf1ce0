import type { Expected, ServerRow } from "./db.ts";

// The two files the coordinator writes for Prometheus, pure: a file_sd target list naming every
// agent by its inventory host, and the expectations export for the "not converged" alert.

/** One file_sd entry: Prometheus scrapes `targets` and adds `labels` to every series it gets from them. */
export interface SdGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** Servers without a metrics URL cannot be scraped: they are named, not silently left out. */
export interface SdResult {
  groups: SdGroup[];
  skipped: string[];
}

// Prometheus' defaults: anything else travels in reserved labels.
const DEFAULT_PATH = "/metrics";

/** The file_sd entry for one metrics URL (validated by inventory.ts: http or https). */
const sdGroup = (s: ServerRow, metricsUrl: string): SdGroup => {
  const url = new URL(metricsUrl);
  const labels: Record<string, string> = { host: s.host };
  if (s.group !== null) labels.group = s.group;
  if (url.protocol === "https:") labels.__scheme__ = "https";
  if (url.pathname !== DEFAULT_PATH) labels.__metrics_path__ = url.pathname;
  for (const [key, value] of url.searchParams) labels[`__param_${key}`] = value;
  return { targets: [url.host], labels };
};

/** file_sd entries naming each agent's target by its host (and group), so alerts and the dashboard say `web-1`. */
export const prometheusSdGroups = (servers: ServerRow[]): SdResult => ({
  groups: servers.flatMap((s) => (s.metricsUrl === null ? [] : [sdGroup(s, s.metricsUrl)])),
  skipped: servers.filter((s) => s.metricsUrl === null).map((s) => s.host),
});

/** The file_sd file's text: a JSON array, one entry per line for readable diffs. */
export const formatSdFile = (groups: SdGroup[]): string =>
  groups.length === 0 ? "[]\n" : `[\n${groups.map((g) => `  ${JSON.stringify(g)}`).join(",\n")}\n]\n`;

/** A label value in the Prometheus text format: backslash, double quote and newline escaped. */
const labelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** The exported metric's name: the alert rules and the dashboard select it. */
export const EXPECTED_METRIC = "fleetplan_expected_plan_info";

/** The expectations export (Prometheus text format) that the FleetplanNotConverged alert compares with the agents. */
export const expectedTextfile = (expected: Map<string, Expected>): string => {
  const lines = [...expected]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([host, e]) => `${EXPECTED_METRIC}{host="${labelValue(host)}",plan_hash="${labelValue(e.planHash)}",provisioning_id="${e.id}"} 1`);
  return [
    `# HELP ${EXPECTED_METRIC} The plan each host should run: the last one this coordinator delivered (fleetplan status --textfile).`,
    `# TYPE ${EXPECTED_METRIC} gauge`,
    ...lines,
    "",
  ].join("\n");
};
