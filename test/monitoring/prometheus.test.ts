// Every dashboard query and alert expression evaluated by a real Prometheus scraping agent-like
// exposers: hosts named whether Prometheus knows them from fleetplan_agent_info or from the
// `--prometheus-sd` target labels, and the converged count equal to `fleetplan status`.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main } from "../../coordinator/cli/main.ts";
import type { StatusRow } from "../../coordinator/cli/status.ts";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import { validateServerInput } from "../../coordinator/inventory.ts";
import type { SdGroup } from "../../coordinator/prometheus-files.ts";
import { formatNodePublic, generateNodeKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { NodeKeyPair } from "../../shared/types.ts";
import { agentExposition, startExposer } from "../helpers/metrics-server.ts";
import type { Exposer, FakeAgentState } from "../helpers/metrics-server.ts";
import { waitFor } from "../helpers/ports.ts";
import { startPrometheus } from "../helpers/prometheus.ts";
import type { PrometheusServer, PrometheusTarget } from "../helpers/prometheus.ts";
import { alertExprs, alertsPath, asPromql, needs, readDashboard } from "./queries.ts";

await sodiumReady();
const skip = needs("prometheus", "prometheus");
const ID = 20250307090501;
const HASH = "e".repeat(64);
const BOOT = 1_741_330_000;

/** What each agent reports, and how Prometheus finds it (sd: through the `--prometheus-sd` file's labels). */
const APPLIED = { applied: { id: ID, planHash: HASH, bootTime: BOOT }, acceptedId: ID, bootTime: BOOT };
const AGENTS: Record<string, { state: Omit<FakeAgentState, "host" | "nodeKeyId">; sd: boolean; expected: boolean }> = {
  "web-1": { state: APPLIED, sd: false, expected: true },
  "web-2": { state: APPLIED, sd: true, expected: true },
  // Rebooted since the apply.
  "web-3": { state: { ...APPLIED, bootTime: BOOT + 3600 }, sd: false, expected: true },
  // Still at the previous plan.
  "web-4": {
    state: { ...APPLIED, applied: { id: ID - 1, planHash: "d".repeat(64), bootTime: BOOT }, acceptedId: ID - 1 },
    sd: false,
    expected: true,
  },
  // The expected plan's run failed.
  "db-1": { state: { acceptedId: ID, bootTime: BOOT }, sd: true, expected: true },
  // Applied, but a file it wrote was changed since.
  "web-5": { state: { ...APPLIED, driftedFiles: 2 }, sd: false, expected: true },
  // Never pushed.
  "web-6": { state: APPLIED, sd: false, expected: false },
};
// In the inventory and expected, but no agent answers.
const SILENT = "web-7";

type Series = { metric: Record<string, string>; value: [number, string] };

describe("dashboard and alerts against a real Prometheus", { skip, timeout: 120_000 }, () => {
  const exposers = new Map<string, Exposer>();
  const keys = new Map<string, NodeKeyPair>();
  let dir: string;
  let db: string;
  let prom: PrometheusServer;
  let textfileExposer: Exposer;

  const cli = async (...argv: string[]) => {
    let stdout = "";
    let stderr = "";
    const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t) };
    const code = await main([...argv, "--db", db, "--store", "nats://127.0.0.1:9"], io);
    return { code, stdout, stderr };
  };
  const query = async (promql: string): Promise<Series[]> => {
    const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    type Answer = { status: string; error?: string; warnings?: string[]; data: { resultType: string; result: Series[] } };
    const doc = (await res.json()) as Answer;
    assert.equal(doc.status, "success", `${promql}\n${doc.error}`);
    assert.equal(doc.warnings, undefined, `${promql}\n${doc.warnings}`);
    assert.equal(doc.data.resultType, "vector", promql);
    return doc.data.result;
  };
  const hostsOf = (series: Series[]) => series.map((s) => s.metric.host ?? `(no host: ${s.metric.instance})`).sort();
  const panelQuery = (title: RegExp, refId = "A") => {
    const panel = readDashboard().panels.find((p) => title.test(p.title));
    const expr = panel?.targets?.find((t) => t.refId === refId)?.expr;
    assert.ok(expr, `no query ${refId} in panel ${title}`);
    return query(asPromql(expr));
  };
  const scalar = async (series: Promise<Series[]>) => {
    const s = await series;
    assert.equal(s.length, 1);
    return Number(s[0]!.value[1]);
  };
  const statusRows = async (prometheus?: string): Promise<StatusRow[]> => {
    const r = await cli("status", "--json", ...(prometheus ? ["--prometheus", prometheus] : []));
    assert.equal(r.code, 1, r.stderr);
    return JSON.parse(r.stdout) as StatusRow[];
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fleetplan-monitoring-"));
    db = join(dir, "fleetplan.db");
    const coordinator = openCoordinatorDb(db);
    for (const [host, agent] of Object.entries(AGENTS)) {
      const key = generateNodeKey();
      keys.set(host, key);
      const lastRun = { success: host !== "db-1", finishedAt: Date.now(), durationMs: 1500 };
      const body = await agentExposition({ ...agent.state, lastRun, host, nodeKeyId: key.keyId });
      exposers.set(host, await startExposer({ "/metrics": { body } }));
    }
    const node = (host: string) => {
      const key = keys.get(host) ?? generateNodeKey();
      return formatNodePublic(key.publicKey, key.identity.publicKey);
    };
    coordinator.addServers(
      [...Object.keys(AGENTS), SILENT].map((host) =>
        validateServerInput({
          host,
          node_key: node(host),
          group: host.startsWith("db") ? "db" : "web",
          metrics: exposers.has(host) ? `${exposers.get(host)!.origin}/metrics` : "http://127.0.0.1:9/metrics",
        }),
      ),
    );
    const expected = [...Object.keys(AGENTS).filter((h) => AGENTS[h]!.expected), SILENT];
    for (const host of expected) coordinator.setExpected(host, ID, HASH, Date.now());
    coordinator.close();

    // The expectations export, served as node_exporter's textfile collector would (another job).
    const textfile = join(dir, "fleetplan.prom");
    assert.equal((await cli("status", "--textfile", textfile)).code, 1);
    textfileExposer = await startExposer({ "/metrics": { body: readFileSync(textfile, "utf8") } });
    // Targets as `server list --prometheus-sd` names them, for the agents marked sd.
    const sd = await cli("server", "list", "--prometheus-sd");
    const groups = new Map((JSON.parse(sd.stdout) as SdGroup[]).map((g) => [g.labels.host!, g]));
    const targets: PrometheusTarget[] = [...exposers].map(([host, e]) =>
      AGENTS[host]!.sd ? { target: groups.get(host)!.targets[0]!, labels: groups.get(host)!.labels } : `127.0.0.1:${e.port}`,
    );
    targets.push({ target: `127.0.0.1:${textfileExposer.port}`, labels: { job: "node" } });
    prom = await startPrometheus({ targets, job: "fleetplan-agent" });
    await prom.waitForTargetsUp();
    await waitFor(async () => (await query("fleetplan_expected_plan_info")).length === 7, 10_000, "the expectations scraped");
  });
  after(async () => {
    await prom?.stop();
    for (const e of [...exposers.values(), textfileExposer]) await e?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("evaluates every dashboard query without error", async () => {
    const d = readDashboard();
    let evaluated = 0;
    for (const panel of d.panels) {
      for (const t of panel.targets ?? []) {
        await query(asPromql(t.expr!));
        evaluated++;
      }
    }
    assert.ok(evaluated > 20, `${evaluated} queries`);
    const variable = /^label_values\((.*),\s*host\)$/.exec(d.templating.list.find((v) => v.name === "host")!.definition!)![1]!;
    assert.deepEqual(hostsOf(await query(variable)), Object.keys(AGENTS).sort());
    // The textfile target is another job: not counted as an agent.
    assert.equal((await query('up{job="node"}')).length, 1);
  });

  it("counts converged hosts exactly as fleetplan status does, with or without Prometheus", async () => {
    for (const rows of [await statusRows(prom.url), await statusRows()]) {
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.host, r.verdict])), {
        "db-1": "failed",
        "web-1": "converged",
        "web-2": "converged",
        "web-3": "rebooted",
        "web-4": "pending",
        "web-5": "drifted",
        "web-6": "unknown",
        "web-7": "unknown",
      });
      const expected = rows.filter((r) => r.expected_id !== null);
      const notConverged = expected
        .filter((r) => r.verdict !== "converged")
        .map((r) => r.host)
        .sort();
      assert.equal(await scalar(panelQuery(/converged vs not/i, "A")), rows.filter((r) => r.verdict === "converged").length);
      assert.equal(await scalar(panelQuery(/converged vs not/i, "B")), notConverged.length);
      assert.equal(await scalar(panelQuery(/converged vs not/i, "C")), rows.filter((r) => r.expected_id === null).length);
      assert.deepEqual(hostsOf(await panelQuery(/not converged by host/i)), notConverged);
      // The alert fires (after 30 minutes) for the same hosts.
      assert.deepEqual(hostsOf(await query(alertExprs(readFileSync(alertsPath, "utf8")).get("FleetplanNotConverged")![0]!)), notConverged);
    }
  });

  it("names every agent by host in per-agent panels, from its own info or the sd labels", async () => {
    const agents = Object.keys(AGENTS).sort();
    for (const title of [/last run success/i, /store connected/i, /run duration/i]) {
      assert.deepEqual(hostsOf(await panelQuery(title)), agents, `${title}`);
    }
    // db-1 never applied a plan: no plan hash.
    assert.deepEqual(
      hostsOf(await panelQuery(/provisioning id by host/i, "G")),
      agents.filter((h) => h !== "db-1"),
    );
    const ids = await panelQuery(/provisioning id by host/i, "A");
    assert.deepEqual(Object.fromEntries(ids.map((s) => [s.metric.host, Number(s.value[1])])), {
      "db-1": 0,
      "web-1": ID,
      "web-2": ID,
      "web-3": ID,
      "web-4": ID - 1,
      "web-5": ID,
      "web-6": ID,
    });
    assert.equal(await scalar(panelQuery(/last run failed/i)), 1);
    assert.equal(await scalar(panelQuery(/rebooted since apply/i)), 1);
  });

  it("alerts carry the host, and the sd target labels such as group", async () => {
    const alerts = alertExprs(readFileSync(alertsPath, "utf8"));
    const failed = await query(alerts.get("FleetplanRunFailed")![0]!);
    assert.deepEqual(
      failed.map((s) => [s.metric.host, s.metric.group]),
      [["db-1", "db"]],
    );
    assert.deepEqual(hostsOf(await query(alerts.get("FleetplanRebootedSinceApply")![0]!)), ["web-3"]);
    assert.deepEqual(hostsOf(await query(alerts.get("FleetplanStoreDisconnected")![0]!)), Object.keys(AGENTS).sort());
    for (const expr of [...alerts.values()].flat()) await query(expr);
  });

  it("names a host whose agent went down, from its last fleetplan_agent_info", async () => {
    const alerts = alertExprs(readFileSync(alertsPath, "utf8"));
    await exposers.get("web-4")!.close();
    await exposers.get("db-1")!.close();
    await waitFor(async () => (await query('up{job="fleetplan-agent"} == 0')).length === 2, 10_000, "two targets down");
    assert.deepEqual(hostsOf(await query(alerts.get("FleetplanAgentDown")![0]!)), ["db-1", "web-4"]);
    assert.equal(await scalar(panelQuery(/^agents down$/i)), 2);
    const table = await panelQuery(/agents down by host/i);
    assert.deepEqual(
      table.map((s) => [s.metric.host, s.metric.group]),
      [
        ["db-1", "db"],
        ["web-4", undefined],
      ].sort(),
    );
    // Down, so not converged either (with web-3 rebooted, web-5 drifted, web-7 silent).
    assert.equal(await scalar(panelQuery(/converged vs not/i, "B")), 5);
  });
});
