// Monitoring artifacts: promtool accepts and unit-tests the alert rules, the
// dashboard is valid, and every query uses only metrics the agent exports.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  alertmanagerPath,
  alertsPath,
  alertsTestPath,
  asPromql,
  dashboardExprs,
  dashboardPath,
  needs,
  prometheusPath,
  readDashboard,
  yamlExprs,
} from "./queries.ts";

const skip = needs("promtool", "prometheus");
const skipAmtool = needs("amtool", "prometheus-alertmanager");

// The agent's metrics (counters include their _total suffix in the name), and the coordinator's
// expectations export (fleetplan status --textfile).
const gauges = [
  "fleetplan_agent_provisioning_id",
  "fleetplan_agent_accepted_provisioning_id",
  "fleetplan_agent_plan_info",
  "fleetplan_agent_boot_time_seconds",
  "fleetplan_agent_applied_boot_time_seconds",
  "fleetplan_agent_last_run_success",
  "fleetplan_agent_last_run_timestamp_seconds",
  "fleetplan_agent_last_run_duration_seconds",
  "fleetplan_agent_store_connected",
  "fleetplan_agent_info",
  "fleetplan_agent_running",
  "fleetplan_agent_drifted_files",
  "fleetplan_agent_drift_check_timestamp_seconds",
  "fleetplan_agent_freshness_expires_timestamp_seconds",
  "fleetplan_agent_missing_update",
];
const counters = ["fleetplan_agent_envelopes_total", "fleetplan_agent_runs_total"];
const histogram = "fleetplan_agent_step_duration_seconds";
const knownMetrics = new Set([
  ...gauges,
  ...counters,
  `${histogram}_bucket`,
  `${histogram}_sum`,
  `${histogram}_count`,
  "up",
  "fleetplan_expected_plan_info",
]);
const envelopeResults = new Set([
  "accepted",
  "duplicate",
  "too_large",
  "malformed",
  "unsupported_version",
  "bad_signature",
  "untrusted_signer",
  "wrong_target",
  "expired",
  "from_future",
  "stale",
  "decrypt_failed",
  "decompress_failed",
  "hash_mismatch",
  "invalid_plan",
]);
const requiredAlerts = [
  "FleetplanAgentDown",
  "FleetplanRunFailed",
  "FleetplanEnvelopeRejected",
  "FleetplanStoreDisconnected",
  "FleetplanRebootedSinceApply",
  "FleetplanRunStuck",
  "FleetplanNotConverged",
  "FleetplanFilesDrifted",
  "FleetplanFreshnessExpired",
  "FleetplanMissingUpdate",
];

const promqlKeywords = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "offset",
  "bool",
  "atan2",
  "inf",
  "nan",
]);

// Metric names a PromQL expression selects: identifiers that are not
// functions, keywords, labels, strings, durations or Grafana variables.
const metricNames = (expr: string): string[] => {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  return [...stripped.matchAll(/(?<![\w$.:])[a-zA-Z_:][\w:]*\b(?!\s*\()/g)]
    .map((m) => m[0])
    .filter((name) => !promqlKeywords.has(name.toLowerCase()));
};

// Run promtool and assert that it succeeded.
const promtool = (...args: string[]): string => {
  const result = spawnSync("promtool", args, { encoding: "utf8" });
  assert.equal(result.error, undefined);
  assert.equal(result.status, 0, `promtool ${args.join(" ")}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
};

test("promtool check rules accepts alerts.yml", { skip, timeout: 30_000 }, () => {
  const out = promtool("check", "rules", alertsPath);
  assert.match(out, /SUCCESS: \d+ rules found/);
});

test("promtool test rules passes alerts.test.yml", { skip, timeout: 30_000 }, () => {
  const out = promtool("test", "rules", alertsTestPath);
  assert.match(out, /SUCCESS/);
});

test("promtool check config accepts prometheus.example.yml and its rule file", { skip, timeout: 30_000 }, () => {
  const out = promtool("check", "config", prometheusPath);
  assert.match(out, /SUCCESS: 1 rule files found/);
  assert.match(readFileSync(prometheusPath, "utf8"), /job_name: fleetplan-agent\b/);
});

// Run amtool against the example configuration and assert that it succeeded.
const amtool = (...args: string[]): string => {
  const result = spawnSync("amtool", args, { encoding: "utf8" });
  assert.equal(result.error, undefined);
  assert.equal(result.status, 0, `amtool ${args.join(" ")}\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim();
};

test("amtool accepts alertmanager.example.yml and routes alerts by severity and group", { skip: skipAmtool, timeout: 30_000 }, () => {
  assert.match(amtool("check-config", alertmanagerPath), /SUCCESS/);
  const route = (...labels: string[]) => amtool("config", "routes", "test", `--config.file=${alertmanagerPath}`, ...labels);
  const rejected = ["alertname=FleetplanEnvelopeRejected", "severity=critical", "host=db-1", "group=db", "result=bad_signature"];
  assert.equal(route(...rejected), "security-pager");
  assert.equal(route("alertname=FleetplanRunFailed", "severity=warning", "host=db-1", "group=db"), "db-team");
  assert.equal(route("alertname=FleetplanNotConverged", "severity=warning", "host=web-1"), "fleet-ops");
  // The inhibition names real alerts.
  const text = readFileSync(alertmanagerPath, "utf8");
  for (const name of ["FleetplanAgentDown", "FleetplanRunFailed", "FleetplanRebootedSinceApply", "FleetplanNotConverged"]) {
    assert.ok(text.includes(name), name);
  }
});

test("every alert is defined, labelled and unit-tested", { timeout: 10_000 }, () => {
  const alerts = readFileSync(alertsPath, "utf8");
  const names = [...alerts.matchAll(/^\s*- alert: (\w+)\s*$/gm)].map((m) => m[1]!);
  assert.deepEqual([...new Set(names)].sort(), [...requiredAlerts].sort());
  assert.equal([...alerts.matchAll(/^\s+severity: (critical|warning)\s*$/gm)].length, names.length);
  assert.equal(yamlExprs(alerts).length, names.length);
  // Alerts name the host, not the scrape target.
  const summaries = [...alerts.matchAll(/^\s+summary: (.*)$/gm)].map((m) => m[1]!);
  assert.equal(summaries.length, names.length);
  for (const summary of summaries) assert.match(summary, /\$labels\.host\b/);
  const tested = new Set([...readFileSync(alertsTestPath, "utf8").matchAll(/alertname: (\w+)/g)].map((m) => m[1]!));
  assert.deepEqual([...tested].sort(), [...requiredAlerts].sort());
});

test("the metric-name extractor finds selectors and nothing else", { timeout: 10_000 }, () => {
  assert.deepEqual(metricNames('sum by (job, le) (rate(foo_total{a="b|c"}[5m])) > on (x) group_left (y) bar offset 10m or vector(0)'), [
    "foo_total",
    "bar",
  ]);
  assert.deepEqual(metricNames('histogram_quantile(0.95, x_bucket{i=~"$instance"}[$__rate_interval]) * 1e3'), ["x_bucket"]);
});

test("alerts, their tests and the dashboard use only metrics the agent exports", { timeout: 10_000 }, () => {
  const alerts = readFileSync(alertsPath, "utf8");
  const dashboard = readDashboard();
  const used = new Set([...yamlExprs(alerts), ...dashboardExprs(dashboard)].flatMap(metricNames));
  // Anything named like ours anywhere in the files, comments and annotations included.
  for (const text of [alerts, readFileSync(alertsTestPath, "utf8"), readFileSync(dashboardPath, "utf8")]) {
    for (const m of text.matchAll(/\bfleetplan_[a-z0-9_]+/g)) used.add(m[0]);
  }
  // Input series of the unit tests: a misnamed series would make "does not fire" pass vacuously.
  for (const m of readFileSync(alertsTestPath, "utf8").matchAll(/series: '([a-zA-Z_:][\w:]*)\{/g)) used.add(m[1]!);
  const unknown = [...used].filter((name) => !knownMetrics.has(name));
  assert.deepEqual(unknown, []);
  for (const name of ["up", "fleetplan_agent_envelopes_total", "fleetplan_agent_running"]) {
    assert.ok(used.has(name), `${name} is never used: the extractor is broken`);
  }
});

test("result label matchers name only real reason codes", { timeout: 10_000 }, () => {
  const texts = [readFileSync(alertsPath, "utf8"), readFileSync(dashboardPath, "utf8")];
  let matchers = 0;
  for (const text of texts) {
    for (const m of text.matchAll(/result\s*(?:=~|!~|!=|=)\s*\\?"([^"\\]*)\\?"/g)) {
      matchers++;
      for (const reason of m[1]!.split("|")) assert.ok(envelopeResults.has(reason), `unknown result "${reason}"`);
    }
  }
  assert.ok(matchers >= 4);
  // duplicate is benign: every rejection alert must exclude it.
  let checked = 0;
  for (const expr of yamlExprs(texts[0]!).filter((e) => e.includes("fleetplan_agent_envelopes_total{"))) {
    for (const m of expr.matchAll(/fleetplan_agent_envelopes_total\{result(=~|!~)"([^"]*)"\}/g)) {
      checked++;
      const listed = m[2]!.split("|").includes("duplicate");
      assert.equal(m[1] === "=~" ? listed : !listed, false, `duplicate may alert: ${m[0]}`);
    }
  }
  assert.ok(checked >= 4, "the rejection alerts no longer match the expected form");
});

test("dashboard.json is a valid dashboard with the agreed panels", { timeout: 10_000 }, () => {
  const d = readDashboard();
  assert.equal(d.uid, "fleetplan-agents");
  const ids = d.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids must be unique");
  for (const title of [
    /converged vs not/i,
    /provisioning id by host/i,
    /last run success/i,
    /rejections by reason/i,
    /run duration/i,
    /store connected/i,
    /not converged by host/i,
    /agents down by host/i,
  ]) {
    assert.ok(
      d.panels.some((p) => title.test(p.title)),
      `no panel titled ${title}`,
    );
  }
  for (const p of d.panels) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, not a template literal
    assert.equal(p.datasource?.uid, "${datasource}", `${p.title}: use the datasource variable`);
    assert.ok((p.targets ?? []).length > 0, `${p.title}: no queries`);
    for (const t of p.targets ?? []) assert.ok(t.expr && t.refId, `${p.title}: query without expr or refId`);
    const { x, w } = p.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24, `${p.title}: outside the 24-column grid`);
  }
  // No two panels overlap.
  for (const [i, a] of d.panels.entries()) {
    for (const b of d.panels.slice(i + 1)) {
      const overlap =
        a.gridPos.x < b.gridPos.x + b.gridPos.w &&
        b.gridPos.x < a.gridPos.x + a.gridPos.w &&
        a.gridPos.y < b.gridPos.y + b.gridPos.h &&
        b.gridPos.y < a.gridPos.y + a.gridPos.h;
      assert.ok(!overlap, `${a.title} overlaps ${b.title}`);
    }
  }
});

test("every dashboard query is valid PromQL", { skip, timeout: 30_000 }, () => {
  const exprs = dashboardExprs(readDashboard());
  assert.ok(exprs.length > 10);
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-dash-"));
  try {
    // promtool parses the expressions of recording rules, so wrap each query in one.
    const rules = exprs.map((e, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(asPromql(e))}\n`);
    const file = join(dir, "dashboard-queries.yml");
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join("")}`);
    const out = promtool("check", "rules", file);
    assert.match(out, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
