// queryPrometheus against a real Prometheus scraping agent-like exposers every second:
// one query for the fleet, real sample times, and a stopped agent Prometheus finds down has no data (as by direct scrape).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { queryPrometheus, scrapeAgents } from "../../coordinator/metrics-source.ts";
import type { MetricsTarget, SourceResult } from "../../coordinator/metrics-source.ts";
import { verdict } from "../../coordinator/verdict.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { agentExposition, startExposer } from "../helpers/metrics-server.ts";
import type { Exposer, FakeAgentState } from "../helpers/metrics-server.ts";
import { freePort, waitFor } from "../helpers/ports.ts";
import { startPrometheus } from "../helpers/prometheus.ts";
import type { PrometheusServer } from "../helpers/prometheus.ts";

const BOOT = 1_741_330_000;
const HASHES = ["1", "2", "3", "4"].map((c) => c.repeat(64));
const keyIdOf = (host: string) => Buffer.from(host.padEnd(8, "-")).toString("hex").slice(0, 16);
const state = (id: number, hash: string, host: string): FakeAgentState => ({
  applied: { id, planHash: hash, bootTime: BOOT },
  acceptedId: id,
  bootTime: BOOT,
  lastRun: { success: true, finishedAt: 1_741_338_000_000, durationMs: 10 },
  host,
  nodeKeyId: keyIdOf(host),
});

describe("queryPrometheus", { timeout: 90_000 }, () => {
  const exposers: Exposer[] = [];
  let prom: PrometheusServer;
  let targets: MetricsTarget[];
  const query = (lookbackMs = 60_000): Promise<SourceResult> => queryPrometheus(prom.url, targets, { lookbackMs, timeoutMs: 5000 });

  before(async () => {
    for (let i = 0; i < 3; i++)
      exposers.push(await startExposer({ "/metrics": { body: await agentExposition(state(100 + i, HASHES[i]!, `web-${i}`)) } }));
    // web-0 is matched by a `host` label, the others by their metrics URL's host:port.
    prom = await startPrometheus({
      targets: exposers.map((e, i) => (i === 0 ? { target: `127.0.0.1:${e.port}`, labels: { host: "web-0" } } : `127.0.0.1:${e.port}`)),
    });
    targets = [
      { host: "web-0", metricsUrl: null },
      { host: "web-1", metricsUrl: `${exposers[1]!.origin}/metrics` },
      { host: "web-2", metricsUrl: `${exposers[2]!.origin}/metrics` },
      { host: "never-scraped", metricsUrl: "http://127.0.0.1:9/metrics" },
    ];
    await prom.waitForTargetsUp();
  });
  after(async () => {
    await prom?.stop();
    for (const e of exposers) await e.close();
  });

  it("answers for every scraped agent in one query, with the real sample time", async () => {
    const { reported, errors } = await query();
    assert.deepEqual([...reported.keys()].sort(), ["web-0", "web-1", "web-2"]);
    for (let i = 0; i < 3; i++) {
      const r = reported.get(`web-${i}`)!;
      assert.deepEqual(
        { ...r, scrapedAt: 0 },
        {
          appliedId: 100 + i,
          acceptedId: 100 + i,
          planHash: HASHES[i],
          lastRunSuccess: 1,
          lastRunTimestamp: 1_741_338_000,
          // web-0's `host` target label renames the agent's own to exported_host: the identity survives either way.
          bootTime: BOOT,
          appliedBootTime: BOOT,
          running: false,
          driftedFiles: 0,
          host: `web-${i}`,
          nodeKeyId: keyIdOf(`web-${i}`),
          scrapedAt: 0,
        },
      );
      // Scraped every second: the sample is recent, and not simply the query's evaluation time.
      const age = Date.now() - r.scrapedAt;
      assert.ok(age >= 0 && age < 3000, `web-${i} sample age ${age} ms`);
    }
    assert.match(errors.get("never-scraped")!, /no fleetplan_agent series in Prometheus within the last 60 s/);
    assert.equal(errors.size, 1);
  });

  it("reports the new plan once an agent applied it, although the old plan_info series lingers", async () => {
    exposers[1]!.routes.set("/metrics", { body: await agentExposition(state(200, HASHES[3]!, "web-1")) });
    await waitFor(async () => (await query()).reported.get("web-1")?.appliedId === 200, 10_000, "web-1 at id 200");
    assert.equal((await query()).reported.get("web-1")!.planHash, HASHES[3]);
  });

  it("reports the identity the URL serves now, although the old fleetplan_agent_info series lingers", async () => {
    exposers[1]!.routes.set("/metrics", { body: await agentExposition(state(200, HASHES[3]!, "impostor")) });
    await waitFor(async () => (await query()).reported.get("web-1")?.host === "impostor", 10_000, "web-1's URL serving impostor");
    assert.equal((await query()).reported.get("web-1")!.nodeKeyId, keyIdOf("impostor"));
    exposers[1]!.routes.set("/metrics", { body: await agentExposition(state(200, HASHES[3]!, "web-1")) });
    await waitFor(async () => (await query()).reported.get("web-1")?.host === "web-1", 10_000, "web-1's URL serving web-1 again");
  });

  it("has no data for a stopped agent once Prometheus finds it down (up == 0): the verdict a direct scrape gives", async () => {
    await exposers[2]!.close();
    const stoppedAt = Date.now();
    await waitFor(async () => (await query()).errors.has("web-2"), 10_000, "Prometheus finding web-2 down");
    const { reported, errors } = await query();
    assert.equal(reported.has("web-2"), false);
    assert.match(errors.get("web-2")!, /^Prometheus finds 127\.0\.0\.1:\d+ down \(up == 0; last sample /);
    const last = Date.parse(/last sample (\S+)\)/.exec(errors.get("web-2")!)![1]!);
    assert.ok(last <= stoppedAt && last > stoppedAt - 2500, "the last sample is the last scrape, to within a scrape and a step");
    const alive = reported.get("web-0")!;
    assert.ok(Date.now() - alive.scrapedAt < 2500);
    const now = Date.now();
    const direct = await scrapeAgents([{ host: "web-2", metricsUrl: targets[2]!.metricsUrl }], { timeoutMs: 1000, attempts: 1 });
    const expected = { id: 102, planHash: HASHES[2]! };
    assert.equal(direct.reported.has("web-2"), false);
    assert.deepEqual(
      verdict(expected, reported.get("web-2") ?? null, null, now, 2000),
      verdict(expected, direct.reported.get("web-2") ?? null, null, now, 2000),
    );
    assert.equal(verdict(expected, null, null, now, 2000).verdict, "unknown");
    assert.equal(verdict({ id: 100, planHash: HASHES[0]! }, alive, null, now, 2000).verdict, "converged");
  });

  it("fails with metrics_unavailable when Prometheus cannot be reached", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(
      queryPrometheus(url, targets, { timeoutMs: 1000 }),
      (e: unknown) => e instanceof FleetplanError && e.reason === "metrics_unavailable" && /ECONNREFUSED/.test(e.message),
    );
  });

  it("fails with metrics_unavailable when the answer is not a Prometheus API answer", async () => {
    await assert.rejects(
      queryPrometheus(`${prom.url}/graph`, targets, { timeoutMs: 2000 }),
      (e: unknown) => e instanceof FleetplanError && e.reason === "metrics_unavailable",
    );
  });
});
