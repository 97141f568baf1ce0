// Consul KV request building, reply parsing and blocking-index rules, without a server.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  blockingTimeoutMs,
  consulAgentOptions,
  kvGetRequest,
  kvPutRequest,
  nextIndex,
  parseIndex,
  parseKvRead,
  parseKvWrite,
  replyError,
  resolveTuning,
} from "../../shared/consul-kv.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";

const config = (url: string, extra: Record<string, unknown> = {}) => {
  const problems: string[] = [];
  const c = normalizeStoreConfig({ url, timeoutMs: 2_000, ...extra }, problems, {});
  assert.deepEqual(problems, []);
  return c;
};
const reply = (status: number, body: string, index?: string) => ({ status, index, body: Buffer.from(body) });
const throwsCode = (fn: () => unknown, reason: string, message?: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof FleetplanError && e.reason === reason && (!message || message.test(e.message)));

describe("blocking index rules", () => {
  it("keeps a moving index and waits on it next", () => assert.equal(nextIndex(10, 12), 12));
  it("keeps an unchanged index (the wait ran out)", () => assert.equal(nextIndex(12, 12), 12));
  it("resets to 0 when the index goes backwards (snapshot restore)", () => assert.equal(nextIndex(120, 3), 0));
  it("never blocks on 0: a zero or missing index becomes 1", () => {
    assert.equal(nextIndex(0, 0), 1);
    assert.equal(nextIndex(0, parseIndex(undefined)), 1);
  });
  it("reads X-Consul-Index strictly", () => {
    assert.deepEqual(["42", "0", "-3", "x", "1.5", undefined].map(parseIndex), [42, 0, 0, 0, 0, 0]);
  });
  it("gives a blocking GET its wait, the server's jitter and one store timeout", () => {
    assert.equal(blockingTimeoutMs(16_000, 2_000), 19_000);
  });
});

describe("requests", () => {
  it("builds a plain read with token header and datacenter", () => {
    const r = kvGetRequest(config("consul://127.0.0.1:8500", { token: "t0k", datacenter: "dc2" }), "fleetplan/plans/web-1");
    assert.equal(r.url, "http://127.0.0.1:8500/v1/kv/fleetplan/plans/web-1?dc=dc2");
    assert.equal(r.headers["X-Consul-Token"], "t0k");
    assert.equal(r.timeoutMs, 2_000);
  });
  it("builds a blocking prefix read over https with index and wait", () => {
    const r = kvGetRequest(config("consul+https://consul.example:8501"), "fleetplan/status/", { recurse: true, index: 77, waitMs: 5_000 });
    assert.equal(r.url, "https://consul.example:8501/v1/kv/fleetplan/status/?recurse=true&index=77&wait=5000ms");
    assert.equal(r.headers["X-Consul-Token"], undefined);
    assert.equal(r.timeoutMs, 5_000 + 313 + 2_000);
  });
  it("sends no index or wait on index 0", () => {
    assert.doesNotMatch(kvGetRequest(config("consul://h:1"), "k", { index: 0 }).url, /index|wait/);
  });
  it("puts raw bytes as octet-stream", () => {
    const r = kvPutRequest(config("consul://h:1"), "fleetplan/plans/a", new Uint8Array([1, 2]), "plan envelope for a", 10);
    assert.equal(r.method, "PUT");
    assert.equal(r.headers["Content-Type"], "application/octet-stream");
    assert.deepEqual(r.body, new Uint8Array([1, 2]));
  });
  it("refuses a value over the limit before building the request", () => {
    throwsCode(
      () => kvPutRequest(config("consul://h:1"), "k", new Uint8Array(524_289), "plan envelope for a", 524_288),
      "value_too_large",
      /plan envelope for a is 524289 bytes, Consul's KV value limit is 524288 bytes \(raise limits\.kv_max_value_size/,
    );
  });
});

describe("replies", () => {
  it("decodes base64 values and indexes", () => {
    const body = JSON.stringify([
      { Key: "k", Value: Buffer.from("hi").toString("base64"), ModifyIndex: 9, CreateIndex: 4, Flags: 0, LockIndex: 0 },
    ]);
    const read = parseKvRead(reply(200, body, "9"), "k");
    assert.equal(read.index, 9);
    assert.equal(Buffer.from(read.entries[0]!.value).toString(), "hi");
    assert.deepEqual([read.entries[0]!.modifyIndex, read.entries[0]!.createIndex], [9, 4]);
  });
  it("reads a null Value as empty bytes", () => {
    const read = parseKvRead(reply(200, JSON.stringify([{ Key: "k", Value: null, ModifyIndex: 1, CreateIndex: 1 }]), "1"), "k");
    assert.equal(read.entries[0]!.value.length, 0);
  });
  it("treats 404 as no value yet, keeping the index", () => {
    assert.deepEqual(parseKvRead(reply(404, "", "31"), "k"), { index: 31, entries: [] });
  });
  it("turns a garbled body into store_unavailable, never a SyntaxError", () => {
    throwsCode(() => parseKvRead(reply(200, "{nope", "1"), "k"), "store_unavailable", /not JSON/);
    throwsCode(() => parseKvRead(reply(200, '[{"Key":"k","Value":"**","ModifyIndex":1,"CreateIndex":1}]', "1"), "k"), "store_unavailable");
  });
  it("names an ACL denial plainly", () => {
    throwsCode(
      () => parseKvRead(reply(403, "Permission denied", "1"), "k"),
      "store_rejected",
      /^consul: permission denied \(check the ACL token\)$/,
    );
  });
  it("maps 413 to value_too_large, 5xx and 429 to store_unavailable, other 4xx to store_rejected", () => {
    assert.equal(replyError(reply(413, "too big"), "k", false)?.reason, "value_too_large");
    assert.equal(replyError(reply(500, "No cluster leader"), "k", true)?.reason, "store_unavailable");
    assert.equal(replyError(reply(429, ""), "k", true)?.reason, "store_unavailable");
    assert.equal(replyError(reply(400, "Missing key"), "k", true)?.reason, "store_rejected");
    assert.equal(replyError(reply(404, ""), "k", false)?.reason, "store_rejected");
  });
  it("accepts a write answered true and refuses one answered false", () => {
    parseKvWrite(reply(200, "true"), "k");
    throwsCode(() => parseKvWrite(reply(200, "false"), "k"), "store_rejected", /not applied/);
  });
});

describe("tuning and TLS options", () => {
  it("fills defaults and rejects bad knobs by name", () => {
    assert.equal(resolveTuning().maxValueBytes, 524_288);
    assert.equal(resolveTuning({ waitMs: undefined }).waitMs, 300_000);
    throwsCode(() => resolveTuning({ waitMs: 700_000 }), "invalid_config", /waitMs: 700000/);
    throwsCode(() => resolveTuning({ attempts: 0 }), "invalid_config", /attempts: 0/);
  });
  it("reads the TLS files it is given and names one that cannot be read", () => {
    const read = (path: string) => {
      if (path === "/missing.pem") throw Object.assign(new Error("nope"), { code: "ENOENT" });
      return Buffer.from(path);
    };
    assert.deepEqual(consulAgentOptions({ ca: "/ca.pem" }, read), { keepAlive: true, ca: Buffer.from("/ca.pem") });
    throwsCode(
      () => consulAgentOptions({ ca: "/ca.pem", key: "/missing.pem" }, read),
      "invalid_config",
      /tls key: cannot read \/missing\.pem: ENOENT/,
    );
  });
});
