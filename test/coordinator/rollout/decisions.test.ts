// Rollout decisions, pure: wave sizes, ordering, error budget, gate verdicts, target selection.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ServerRow } from "../../../coordinator/db.ts";
import { accountBudget, budgetLimit, budgetReason, isFailure } from "../../../coordinator/rollout/budget.ts";
import { evaluateGate, gateVerdict } from "../../../coordinator/rollout/gate.ts";
import { globToRegExp, parseTags, selectTargets } from "../../../coordinator/rollout/targets.ts";
import {
  batchEnds,
  hostsToPush,
  naturalCompare,
  orderTargets,
  parseAmount,
  parseWaves,
  waveEnds,
  waveOf,
} from "../../../coordinator/rollout/waves.ts";

const T = { timeout: 10_000 };
const invalid = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: Error & { reason?: string }) => e.reason !== undefined && pattern.test(e.message));

describe("waves", () => {
  it("cumulative --waves resolve per target count; percentages round up, empty waves drop", T, () => {
    assert.deepEqual(waveEnds(parseWaves("1,10%,50%,100%"), 100), [1, 10, 50, 100]);
    assert.deepEqual(waveEnds(parseWaves("1,10%,50%,100%"), 5), [1, 3, 5]);
    assert.deepEqual(waveEnds(parseWaves("1,100%"), 1), [1]);
    assert.deepEqual(waveEnds(parseWaves("2, 100"), 7), [2, 7]);
  });

  it("--waves that go down, leave hosts out or are not amounts are refused with the fix", T, () => {
    invalid(() => waveEnds(parseWaves("50%,10%,100%"), 100), /must not go down/);
    invalid(() => waveEnds(parseWaves("1,50%"), 10), /end the list with 100%/);
    invalid(() => parseWaves("1,,100%"), /empty entry/);
    invalid(() => parseWaves("1,ten,100%"), /whole number/);
    invalid(() => parseWaves("0,100%"), /whole number ≥ 1/);
    invalid(() => parseWaves("1,150%"), /percentage/);
  });

  it("--batch makes equal waves, the last possibly smaller", T, () => {
    assert.deepEqual(batchEnds(parseAmount("--batch", "2"), 5), [2, 4, 5]);
    assert.deepEqual(batchEnds(parseAmount("--batch", "25%"), 10), [3, 6, 9, 10]);
    assert.deepEqual(batchEnds(parseAmount("--batch", "10"), 3), [3]);
  });

  it("targets go canaries first, then in natural order; an unknown canary is refused", T, () => {
    assert.deepEqual(orderTargets(["web-10", "web-2", "db-1", "web-1"]), ["db-1", "web-1", "web-2", "web-10"]);
    assert.deepEqual(orderTargets(["web-10", "web-2", "db-1"], ["web-10"]), ["web-10", "db-1", "web-2"]);
    invalid(() => orderTargets(["web-1"], ["web-9"]), /web-9 not among the selected targets/);
    assert.ok(naturalCompare("a2", "a10") < 0 && naturalCompare("a02", "a2") !== 0);
  });

  it("a wave pushes its own hosts; the first wave of a resume also retries earlier ones that did not succeed", T, () => {
    const targets = [
      { host: "a", position: 0, outcome: "failed" },
      { host: "b", position: 1, outcome: "succeeded" },
      { host: "c", position: 2, outcome: "pending" },
    ];
    const done = new Set(["succeeded", "skipped"]);
    assert.deepEqual(hostsToPush(targets, [1, 3], 1, done, true), ["a", "c"]);
    assert.deepEqual(hostsToPush(targets, [1, 3], 1, done, false), ["c"]);
    assert.deepEqual(
      [0, 1, 2].map((p) => waveOf(p, [1, 3])),
      [0, 1, 1],
    );
  });
});

describe("error budget", () => {
  it("every non-success counts, silence included; pending and in-flight do not", T, () => {
    for (const o of ["failed", "rejected", "interrupted", "timeout", "put_failed", "not_converged"]) assert.ok(isFailure(o), o);
    for (const o of ["succeeded", "skipped", "pending", "pushed"]) assert.ok(!isFailure(o), o);
  });

  it("N or P% (rounded down) of all targets; exhausted once failures exceed it", T, () => {
    assert.equal(budgetLimit(null, 10), 0);
    assert.equal(budgetLimit(parseAmount("--max-failures", "2", 0), 10), 2);
    assert.equal(budgetLimit(parseAmount("--max-failures", "10%", 0), 5), 0);
    assert.equal(budgetLimit(parseAmount("--max-failures", "0", 0), 5), 0);
    const b = accountBudget(
      [
        { host: "a", outcome: "timeout" },
        { host: "b", outcome: "succeeded" },
      ],
      0,
    );
    assert.deepEqual([b.used, b.exhausted], [1, true]);
    assert.match(budgetReason(b), /1 failed \(allowed 0\): a timeout/);
    assert.equal(accountBudget([{ host: "a", outcome: "failed" }], 1).exhausted, false);
  });
});

describe("gate verdict", () => {
  const vector = (...values: string[]) => ({
    status: "success",
    data: { resultType: "vector", result: values.map((v) => ({ metric: {}, value: [1, v] })) },
  });
  it("passes only a non-empty answer whose every sample is non-zero", T, () => {
    assert.equal(gateVerdict("q", vector("1", "3")).pass, true);
    assert.equal(gateVerdict("q", { status: "success", data: { resultType: "scalar", result: [1, "1"] } }).pass, true);
  });
  it("an empty answer, a zero, NaN or an error never passes, and says why", T, () => {
    assert.match(gateVerdict("q", vector()).why, /empty result/);
    assert.match(gateVerdict("q", vector("1", "0")).why, /1 of 2 sample\(s\) are zero/);
    assert.equal(gateVerdict("q", vector("NaN")).pass, false);
    assert.match(gateVerdict("q", { status: "error", error: "parse error" }).why, /answered error \(parse error\)/);
    assert.equal(gateVerdict("q", { status: "success", data: { resultType: "matrix", result: [] } }).pass, false);
  });
  it("an unreachable Prometheus is a closed gate, never an exception", T, async () => {
    const verdict = await evaluateGate("http://127.0.0.1:1", "up == 1");
    assert.equal(verdict.pass, false);
    assert.match(verdict.why, /unreachable or refused the query \(ECONNREFUSED\)/);
  });
});

describe("target selection", () => {
  const row = (host: string, group: string | null): ServerRow => ({
    host,
    nodeKey: "",
    nodeKeyId: "",
    metricsUrl: null,
    ssh: null,
    group,
    bootstrapped: true,
    addedAt: 0,
  });
  const all = [row("db-1", "db"), row("web-1", "web"), row("web-2", "web"), row("cache-1", null)];
  const tags: Record<string, Record<string, string>> = {
    "web-1": { dc: "fra", tier: "gold" },
    "web-2": { dc: "ams" },
    "db-1": { dc: "fra" },
  };
  const select = (flags: Parameters<typeof selectTargets>[2], required = true) =>
    selectTargets(all, (h) => tags[h] ?? {}, flags, required).map((s) => s.host);

  it("globs, several groups and tags (AND) select the right hosts", T, () => {
    assert.deepEqual(select({ servers: "web-*" }), ["web-1", "web-2"]);
    assert.deepEqual(select({ servers: "web-?,db-1" }), ["db-1", "web-1", "web-2"]);
    assert.deepEqual(select({ group: "web,db" }), ["db-1", "web-1", "web-2"]);
    assert.deepEqual(select({ where: ["dc=fra"] }), ["db-1", "web-1"]);
    assert.deepEqual(select({ group: "web", where: ["dc=fra", "tier=gold"] }), ["web-1"]);
    assert.ok(globToRegExp("web-[12]").test("web-2") && !globToRegExp("web.1").test("webx1"));
  });

  it("a name, glob or group that selects nothing is named; empty or conflicting flags are refused", T, () => {
    invalid(() => select({ servers: "web-9,api-*" }), /matches web-9, api-\*/);
    invalid(() => select({ group: "web,dns" }), /group\(s\) dns/);
    invalid(() => select({ where: ["dc=nyc"] }), /none has tags dc=nyc/);
    invalid(() => select({ servers: " , " }), /no host names given/);
    invalid(() => select({ group: "" }), /no group name given/);
    invalid(() => select({ servers: "web-1", group: "web" }), /only one of/);
    invalid(() => select({}), /choose targets/);
    assert.equal(select({}, false).length, 4);
  });

  it("tags are KEY=VALUE, each key once", T, () => {
    assert.deepEqual(parseTags("--tag", ["dc=fra", "tier=gold"]), { dc: "fra", tier: "gold" });
    invalid(() => parseTags("--tag", ["dc"]), /must be KEY=VALUE/);
    invalid(() => parseTags("--tag", ["dc=fra", "dc=ams"]), /key dc given twice/);
  });
});
