// The Consul fake answers as the KV API docs say, so tests against it mean something.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type FakeConsul, startFakeConsul } from "./consul.ts";

const kvUrl = (fake: FakeConsul, key: string, query = "") => `${fake.url}/v1/kv/${key}${query}`;
const put = (fake: FakeConsul, key: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  fetch(kvUrl(fake, key), { method: "PUT", body: typeof body === "string" ? body : new Uint8Array(body), headers });
const get = async (fake: FakeConsul, key: string, query = "", headers: Record<string, string> = {}) => {
  const res = await fetch(kvUrl(fake, key, query), { headers });
  const text = await res.text();
  return { status: res.status, index: Number(res.headers.get("x-consul-index")), json: res.status === 200 ? JSON.parse(text) : null, text };
};

describe("fake consul KV", () => {
  let fake: FakeConsul;
  before(async () => {
    fake = await startFakeConsul({ initialIndex: 40, maxValueBytes: 1_000 });
  });
  after(() => fake.stop());

  it("answers 404 for a missing key with the store's index", async () => {
    const r = await get(fake, "none/here");
    assert.equal(r.status, 404);
    assert.equal(r.index, 40);
  });

  it("stores a raw PUT body and returns it base64 with its indexes", async () => {
    const res = await put(fake, "a/one", Buffer.from([0, 1, 2, 255]));
    assert.equal(await res.text(), "true");
    const r = await get(fake, "a/one");
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(r.json[0].Value, "base64"), Buffer.from([0, 1, 2, 255]));
    assert.equal(r.json[0].ModifyIndex, 41);
    assert.equal(r.json[0].CreateIndex, 41);
    assert.equal(r.index, 41);
    await put(fake, "a/one", "x");
    const again = await get(fake, "a/one");
    assert.deepEqual([again.json[0].CreateIndex, again.json[0].ModifyIndex, again.index], [41, 42, 42]);
  });

  it("lists a prefix with ?recurse, index = highest ModifyIndex under it", async () => {
    await put(fake, "a/two", "y");
    await put(fake, "b/other", "z");
    const r = await get(fake, "a/", "?recurse");
    assert.deepEqual(
      r.json.map((e: { Key: string }) => e.Key),
      ["a/one", "a/two"],
    );
    assert.equal(r.index, 43);
  });

  it("refuses a value over the limit with 413 and stores nothing", async () => {
    const res = await put(fake, "big", Buffer.alloc(1_001));
    assert.equal(res.status, 413);
    assert.match(await res.text(), /1001 bytes.*1000 bytes/);
    assert.equal((await get(fake, "big")).status, 404);
  });

  it("holds a blocking query until the key changes", async () => {
    const start = (await get(fake, "a/one")).index;
    const waiting = get(fake, "a/one", `?index=${start}&wait=5s`);
    await new Promise((r) => setTimeout(r, 100));
    await put(fake, "a/one", "changed");
    const r = await waiting;
    assert.ok(r.index > start);
    assert.equal(Buffer.from(r.json[0].Value, "base64").toString(), "changed");
  });

  it("returns an unchanged index when the wait runs out, and ignores writes elsewhere", async () => {
    const start = (await get(fake, "a/one")).index;
    const t0 = Date.now();
    const waiting = get(fake, "a/one", `?index=${start}&wait=400ms`);
    await put(fake, "b/other", "unrelated");
    const r = await waiting;
    assert.ok(Date.now() - t0 >= 380, "held for the wait");
    assert.equal(r.index, start);
  });

  it("wakes a prefix query on a delete under it (tombstone index)", async () => {
    const start = (await get(fake, "a/", "?recurse")).index;
    const waiting = get(fake, "a/", `?recurse&index=${start}&wait=5s`);
    await new Promise((r) => setTimeout(r, 50));
    await fetch(kvUrl(fake, "a/two"), { method: "DELETE" });
    const r = await waiting;
    assert.ok(r.index > start);
    assert.deepEqual(
      r.json.map((e: { Key: string }) => e.Key),
      ["a/one"],
    );
  });

  it("records requests with their blocking index", () => {
    const blocking = fake.requests.filter((r) => r.index !== undefined);
    assert.ok(blocking.length >= 3);
    assert.ok(blocking.every((r) => r.method === "GET" && r.path.startsWith("/v1/kv/") && r.at > 0));
  });
});

describe("fake consul ACL and restarts", () => {
  it("answers 403 without the configured token and serves with it", async () => {
    const fake = await startFakeConsul({ token: "s3cret" });
    try {
      assert.equal((await get(fake, "k")).status, 403);
      assert.equal((await get(fake, "k", "", { "X-Consul-Token": "nope" })).status, 403);
      assert.equal((await put(fake, "k", "v", { "X-Consul-Token": "s3cret" })).status, 200);
      assert.equal((await get(fake, "k", "?dc=dc1", { "X-Consul-Token": "s3cret" })).status, 200);
    } finally {
      await fake.stop();
    }
  });

  it("restarts on the same port, keeping data, with indexes counted again from 1", async () => {
    const fake = await startFakeConsul({ initialIndex: 500 });
    try {
      await put(fake, "x", "1");
      await put(fake, "y", "2");
      const port = fake.port;
      const waiting = get(fake, "x", "?index=501&wait=10s").catch((error: Error) => error);
      await new Promise((r) => setTimeout(r, 50));
      await fake.restart({ lowerIndex: true });
      assert.ok((await waiting) instanceof Error, "the held query was cut off");
      assert.equal(fake.port, port);
      const r = await get(fake, "y");
      assert.deepEqual([r.json[0].ModifyIndex, r.index, Buffer.from(r.json[0].Value, "base64").toString()], [2, 2, "2"]);
      assert.equal((await get(fake, "missing")).index, 2);
    } finally {
      await fake.stop();
    }
  });
});
