// Reading agents' metrics: the exposition parser, the agent state it yields, and the direct scrape.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseAgentMetrics, parseExposition, reportedFromSamples } from "../../coordinator/metrics-parse.ts";
import { scrapeAgents } from "../../coordinator/metrics-source.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { agentExposition, startExposer } from "../helpers/metrics-server.ts";
import type { Exposer } from "../helpers/metrics-server.ts";
import { freePort } from "../helpers/ports.ts";

const HASH = "c".repeat(64);
const OLD_HASH = "d".repeat(64);
const ID = 20250307090501;
const BOOT = 1_741_330_000;
const KEY_ID = "0123456789abcdef";
const APPLIED = {
  applied: { id: ID, planHash: HASH, bootTime: BOOT },
  acceptedId: ID,
  bootTime: BOOT,
  lastRun: { success: true, finishedAt: 1_741_338_000_000, durationMs: 1500 },
  host: "web-1",
  nodeKeyId: KEY_ID,
};

describe("parseExposition", () => {
  it("reads names, escaped labels, special values and timestamps, skipping comments", () => {
    const text = [
      '# HELP x_total A counter with \\ and "quotes" in help.',
      "# TYPE x_total counter",
      'x_total{path="/a\\"b\\\\c\\nd",code="200",} 3 1700000000000',
      "plain 1.5e3",
      'spaced { a = "1" } -Inf',
      "nan_gauge NaN",
      "inf_gauge +Inf",
      "",
      "# EOF",
    ].join("\n");
    assert.deepEqual(parseExposition(text), [
      { name: "x_total", labels: { path: '/a"b\\c\nd', code: "200" }, value: 3 },
      { name: "plain", labels: {}, value: 1500 },
      { name: "spaced", labels: { a: "1" }, value: -Infinity },
      { name: "nan_gauge", labels: {}, value: Number.NaN },
      { name: "inf_gauge", labels: {}, value: Infinity },
    ]);
  });

  const bad: [string, RegExp][] = [
    ['m{a="1} 1', /line 2: unterminated label value/],
    ['m{a="\\q"} 1', /line 2: bad escape/],
    ['m{1a="x"} 1', /line 2: bad label name/],
    ['m{a="1" b="2"} 1', /line 2: expected , or }/],
    ["m", /line 2: expected a value/],
    ["m 1 2 3", /line 2: expected a value/],
    ["m abc", /line 2: bad value "abc"/],
    ["<html>", /line 2: bad metric name/],
  ];
  for (const [line, pattern] of bad) {
    it(`refuses ${JSON.stringify(line)} naming the line`, () => {
      assert.throws(
        () => parseExposition(`ok 1\n${line}\n`),
        (e: unknown) => e instanceof FleetplanError && e.reason === "malformed" && pattern.test(e.message),
      );
    });
  }
});

describe("parseAgentMetrics", () => {
  it("reads the state of an agent that applied a plan, as the agent renders it", async () => {
    assert.deepEqual(parseAgentMetrics(await agentExposition(APPLIED), 42), {
      appliedId: ID,
      acceptedId: ID,
      planHash: HASH,
      lastRunSuccess: 1,
      lastRunTimestamp: 1_741_338_000,
      bootTime: BOOT,
      appliedBootTime: BOOT,
      running: false,
      driftedFiles: 0,
      host: "web-1",
      nodeKeyId: KEY_ID,
      scrapedAt: 42,
    });
  });

  it("reports nulls, not zeros, for a fresh agent that never ran (and one that names no identity)", async () => {
    assert.deepEqual(parseAgentMetrics(await agentExposition({ bootTime: BOOT }), 7), {
      appliedId: null,
      acceptedId: null,
      planHash: null,
      lastRunSuccess: null,
      lastRunTimestamp: null,
      bootTime: BOOT,
      appliedBootTime: null,
      running: false,
      driftedFiles: 0,
      host: null,
      nodeKeyId: null,
      scrapedAt: 7,
    });
  });

  it("takes the identity of the newest fleetplan_agent_info series, and none when the newest disagree", () => {
    const info = (host: string, key: string, value: number) => ({
      name: "fleetplan_agent_info",
      labels: { version: "1", store: "nats", host, node_key_id: key },
      value,
    });
    const identity = (samples: ReturnType<typeof info>[]) => {
      const r = reportedFromSamples(samples, 0);
      return [r.host, r.nodeKeyId];
    };
    assert.deepEqual(identity([info("web-1", KEY_ID, 1)]), ["web-1", KEY_ID]);
    // From Prometheus: the live series carries its sample time, a lingering old one 1.
    assert.deepEqual(identity([info("web-9", "ffffffffffffffff", 1), info("web-1", KEY_ID, 1_741_338_000)]), ["web-1", KEY_ID]);
    assert.deepEqual(identity([info("web-9", "ffffffffffffffff", 1), info("web-1", KEY_ID, 1)]), [null, null]);
    assert.deepEqual(identity([]), [null, null]);
  });

  it("reports a failed last run and a running agent", async () => {
    const r = parseAgentMetrics(
      await agentExposition({
        ...APPLIED,
        acceptedId: ID + 1,
        running: true,
        lastRun: { success: false, finishedAt: 1_741_339_000_000, durationMs: 1 },
      }),
      1,
    );
    assert.deepEqual([r.appliedId, r.acceptedId, r.lastRunSuccess, r.running], [ID, ID + 1, 0, true]);
  });

  it("takes the applied id's plan_info when an old series lingers, else the newest", () => {
    const info = (id: number, hash: string) => ({
      name: "fleetplan_agent_plan_info",
      labels: { plan_hash: hash, provisioning_id: String(id) },
      value: 1,
    });
    const applied = { name: "fleetplan_agent_provisioning_id", labels: {}, value: ID };
    assert.equal(reportedFromSamples([info(ID + 5, OLD_HASH), info(ID, HASH), applied], 0).planHash, HASH);
    assert.equal(reportedFromSamples([info(ID - 1, OLD_HASH), info(ID + 1, HASH)], 0).planHash, HASH);
  });

  it("refuses a body with no agent metrics", () => {
    assert.throws(
      () => parseAgentMetrics("up 1\n", 0),
      (e: unknown) => e instanceof FleetplanError && e.reason === "malformed",
    );
  });
});

describe("scrapeAgents", { timeout: 20_000 }, () => {
  let fast: Exposer;
  let slow: Exposer;
  before(async () => {
    const body = await agentExposition(APPLIED);
    fast = await startExposer({
      ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`/a${i}/metrics`, { body }])),
      "/flaky/metrics": { body: "", status: 503 },
      "/html/metrics": { body: "<html>hello</html>" },
      "/stall/metrics": { body, stallBody: true },
    });
    slow = await startExposer({ "/metrics": { body, delayMs: 5000 } });
  });
  after(async () => {
    await fast.close();
    await slow.close();
  });

  it("returns every reachable agent and names why the others have no data", async () => {
    const targets = [
      ...Array.from({ length: 20 }, (_, i) => ({ host: `web-${i}`, metricsUrl: `${fast.origin}/a${i}/metrics` })),
      { host: "slow", metricsUrl: `${slow.origin}/metrics` },
      { host: "gone", metricsUrl: `${fast.origin}/nothing-here` },
      { host: "flaky", metricsUrl: `${fast.origin}/flaky/metrics` },
      { host: "html", metricsUrl: `${fast.origin}/html/metrics` },
      { host: "stall", metricsUrl: `${fast.origin}/stall/metrics` },
      { host: "closed", metricsUrl: `http://127.0.0.1:${await freePort()}/metrics` },
      { host: "nourl", metricsUrl: null },
    ];
    const started = Date.now();
    const { reported, errors } = await scrapeAgents(targets, { timeoutMs: 300, concurrency: 4, attempts: 2, now: () => 99 });
    const elapsed = Date.now() - started;
    assert.deepEqual(
      [...reported.keys()].sort(),
      targets
        .slice(0, 20)
        .map((t) => t.host)
        .sort(),
    );
    assert.deepEqual(reported.get("web-3"), parseAgentMetrics(await agentExposition(APPLIED), 99));
    assert.deepEqual([...errors.keys()].sort(), ["closed", "flaky", "gone", "html", "nourl", "slow", "stall"]);
    assert.match(errors.get("slow")!, /timed out after 300 ms$/);
    assert.match(errors.get("stall")!, /timed out after 300 ms$/);
    assert.match(errors.get("gone")!, /HTTP 404$/);
    assert.match(errors.get("flaky")!, /HTTP 503$/);
    assert.match(errors.get("html")!, /line 1: bad metric name$/);
    assert.match(errors.get("closed")!, /ECONNREFUSED$/);
    assert.equal(errors.get("nourl"), "no metrics URL in the inventory");
    // 404 and unparsable bodies are not retried; a 503 and a timeout are, once.
    assert.equal(fast.hits.get("/nothing-here"), 1);
    assert.equal(fast.hits.get("/html/metrics"), 1);
    assert.equal(fast.hits.get("/flaky/metrics"), 2);
    assert.equal(slow.hits.get("/metrics"), 2);
    assert.equal(fast.hits.get("/stall/metrics"), 2);
    // The slow agent costs two timeouts plus one backoff (≤ 1 s), not the sum of everything.
    assert.ok(elapsed < 2 * 300 + 1000 + 1000, `took ${elapsed} ms`);
    assert.ok(fast.maxInFlight <= 4, `max in flight ${fast.maxInFlight}`);
  });
});
