// The agent's Consul feed against the Consul fake over real HTTP: delivery exactly once,
// blocking timeouts, index resets, ACL denial with spaced retries, prompt close.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { createConsulFeed } from "../../agent/store/consul-feed.ts";
import type { ConsulOptions } from "../../shared/consul-client.ts";
import { createLogger } from "../../shared/log.ts";
import type { PlanFeed } from "../../shared/types.ts";
import { consulTestScope, type FakeConsul, putKey, storeConfigFor } from "../fakes/consul.ts";
import { waitFor } from "../helpers/ports.ts";
import { agentStatus } from "../helpers/status.ts";

const HOST = "web-1";
const KEY = `fleetplan/plans/${HOST}`;

const putRaw = async (fake: FakeConsul, key: string, value: string) => assert.equal(await putKey(fake.url, key, value), 200);

const scope = consulTestScope();
const start = scope.start;
const feedFor = (fake: FakeConsul, opts: ConsulOptions & { token?: string } = {}) =>
  scope.defer(createConsulFeed(storeConfigFor(fake, opts.token), { waitMs: 1_000, backoff: { initialMs: 50, maxMs: 200 }, ...opts }));
const follow = (feed: PlanFeed) => {
  const got: { value: string; revision: number }[] = [];
  const connection: boolean[] = [];
  const done = feed.follow(HOST, {
    onEnvelope: async (bytes, revision) => void got.push({ value: Buffer.from(bytes).toString(), revision }),
    onConnection: (up) => void connection.push(up),
  });
  return { got, connection, done };
};

describe("consul feed", () => {
  it("delivers the existing value at start, then a new put, each exactly once", async () => {
    const fake = await start({ initialIndex: 20 });
    await putRaw(fake, KEY, "envelope-1");
    const { got, connection } = follow(feedFor(fake));
    await waitFor(() => got.length === 1, 5_000, "the first value");
    assert.deepEqual(got, [{ value: "envelope-1", revision: 21 }]);
    await putRaw(fake, "fleetplan/plans/other-host", "not mine");
    await putRaw(fake, KEY, "envelope-2");
    await waitFor(() => got.length === 2, 5_000, "the second value");
    assert.deepEqual(got[1], { value: "envelope-2", revision: 23 });
    assert.deepEqual(connection, [true]);
  });

  it("lets a blocking query time out without redelivering", async () => {
    const fake = await start();
    await putRaw(fake, KEY, "only");
    const { got } = follow(feedFor(fake));
    await waitFor(() => got.length === 1, 5_000, "the value");
    await sleep(2_300);
    const held = fake.requests.filter((r) => r.method === "GET" && r.index === got[0]!.revision);
    assert.ok(held.length >= 2, `at least two 1 s waits ran out (saw ${held.length})`);
    assert.equal(got.length, 1);
  });

  it("waits on a missing key (404) and delivers its first value", async () => {
    const fake = await start({ initialIndex: 7 });
    const { got } = follow(feedFor(fake));
    await waitFor(() => fake.requests.some((r) => r.index === 7), 5_000, "a blocking query on the missing key");
    await putRaw(fake, KEY, "first");
    await waitFor(() => got.length === 1, 5_000, "the value");
    assert.deepEqual(got, [{ value: "first", revision: 8 }]);
  });

  it("resets when the index goes backwards (restore) and still delivers the next put", async () => {
    const fake = await start({ initialIndex: 100 });
    await putRaw(fake, KEY, "before-restore");
    const { got, connection } = follow(feedFor(fake));
    await waitFor(() => fake.requests.some((r) => r.index === 101), 5_000, "a blocking query on index 101");
    await fake.restart({ lowerIndex: true });
    await putRaw(fake, KEY, "after-restore");
    await waitFor(() => got.length === 2, 5_000, "the put after the restore");
    assert.deepEqual(got, [
      { value: "before-restore", revision: 101 },
      { value: "after-restore", revision: 2 },
    ]);
    const restarted = fake.requests.filter((r) => r.index === 101);
    assert.ok(restarted.length >= 2, "kept waiting on the old index until the server said otherwise");
    await waitFor(() => fake.requests.some((r) => r.index === 2), 5_000, "a blocking query on the new index");
    assert.deepEqual(connection, [true, false, true]);
    assert.equal(got.length, 2, "the unchanged value was not delivered again after the reset");
  });

  it("does not redeliver identical bytes renumbered by a restore", async () => {
    const fake = await start({ initialIndex: 100 });
    await putRaw(fake, KEY, "same");
    const { got } = follow(feedFor(fake));
    await waitFor(() => fake.requests.some((r) => r.index === 101), 5_000, "a blocking query on index 101");
    await fake.restart({ lowerIndex: true });
    await waitFor(() => fake.requests.filter((r) => r.index === undefined).length >= 2, 8_000, "the reset read (no index)");
    await waitFor(() => fake.requests.some((r) => r.index === 1), 8_000, "blocking on the renumbered index");
    assert.deepEqual(got, [{ value: "same", revision: 101 }]);
  });

  it("retries a value whose handler failed (busy ledger) until it is taken, then never again", async () => {
    const fake = await start();
    await putRaw(fake, KEY, "envelope-1");
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => void lines.push(line) });
    const calls: { value: string; revision: number; ok: boolean }[] = [];
    const feed = feedFor(fake, { logger });
    void feed.follow(HOST, {
      onEnvelope: async (bytes, revision) => {
        const ok = calls.length > 0;
        calls.push({ value: Buffer.from(bytes).toString(), revision, ok });
        if (!ok) throw new Error("SQLITE_BUSY: database is locked");
      },
    });
    await waitFor(() => calls.length === 2, 5_000, "the retried delivery");
    await sleep(2_300); // two 1 s blocking waits run out: neither may bring the value back
    assert.deepEqual(calls, [
      { value: "envelope-1", revision: 11, ok: false },
      { value: "envelope-1", revision: 11, ok: true },
    ]);
    const failed = lines.map((l) => JSON.parse(l)).filter((l) => l.event === "store_deliver_failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0].revision, 11);
    assert.ok(fake.requests.filter((r) => r.index === 11).length >= 2, "the watch went on after the retry");
  });

  it("close() ends the retries of a handler that keeps failing, promptly", async () => {
    const fake = await start();
    await putRaw(fake, KEY, "envelope-1");
    let calls = 0;
    const feed = feedFor(fake, { backoff: { initialMs: 5_000, maxMs: 5_000, random: () => 1 } });
    const done = feed.follow(HOST, {
      onEnvelope: async () => {
        calls += 1;
        throw new Error("ledger unavailable");
      },
    });
    await waitFor(() => calls === 1, 5_000, "the first delivery");
    const t0 = Date.now();
    await feed.close();
    await done;
    assert.ok(Date.now() - t0 < 500, `closed in ${Date.now() - t0} ms`);
    assert.equal(calls, 1);
  });

  it("cuts off a reply too large for one value and still takes the next value of the maximum size", async () => {
    const fake = await start({ maxValueBytes: 2 * 1024 * 1024 });
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => void lines.push(line) });
    const { got } = follow(feedFor(fake, { logger, maxValueBytes: 64 * 1024 }));
    await putRaw(fake, KEY, "x".repeat(200 * 1024));
    await waitFor(() => lines.some((l) => JSON.parse(l).reason === "value_too_large"), 5_000, "the oversized reply refused");
    assert.equal(got.length, 0);
    await putRaw(fake, KEY, "y".repeat(64 * 1024));
    await waitFor(() => got.length === 1, 5_000, "the value of maxValueBytes");
    assert.equal(got[0]!.value, "y".repeat(64 * 1024));
  });

  it("names an ACL denial and retries it with growing, bounded backoff", async () => {
    const fake = await start({ token: "right-token" });
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => void lines.push(line) });
    const feed = feedFor(fake, {
      token: "wrong-token",
      logger,
      minIntervalMs: 0,
      backoff: { initialMs: 100, maxMs: 400, random: () => 1 },
    });
    const { got, connection } = follow(feed);
    await sleep(1_650);
    await feed.close();
    const at = fake.requests.map((r) => r.at);
    // Delays 100, 200, 400, 400 ms: about 6 requests in 1.65 s, where a tight loop would make hundreds.
    assert.ok(at.length >= 4 && at.length <= 8, `saw ${at.length} requests`);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    assert.ok(
      gaps.every((g) => g >= 90),
      `gaps ${gaps}`,
    );
    assert.ok(gaps[2]! > gaps[0]!, `backoff grows: ${gaps}`);
    const failures = lines.map((l) => JSON.parse(l)).filter((l) => l.event === "consul_watch_failed");
    assert.equal(failures.length, at.length);
    assert.equal(failures[0].reason, "store_rejected");
    assert.equal(failures[0].error, "consul: permission denied (check the ACL token)");
    assert.ok(!lines.join("").includes("wrong-token"), "the token never reaches the log");
    assert.deepEqual(got, []);
    assert.deepEqual(connection, [false]);
  });

  it("close() ends a held blocking query promptly and follow() resolves", async () => {
    const fake = await start();
    const feed = feedFor(fake, { waitMs: 60_000 });
    const { done } = follow(feed);
    await waitFor(() => fake.requests.some((r) => r.index !== undefined), 5_000, "a held blocking query");
    const t0 = Date.now();
    await feed.close();
    await done;
    assert.ok(Date.now() - t0 < 500, `closed in ${Date.now() - t0} ms`);
  });

  it("refuses a second follow() on the same feed", async () => {
    const fake = await start();
    const feed = feedFor(fake);
    void follow(feed);
    await assert.rejects(feed.follow(HOST, { onEnvelope: async () => {} }), { reason: "invalid_argument" });
  });

  it("publishes the status record bytes as given under fleetplan/status/<host>", async () => {
    const fake = await start();
    const feed = feedFor(fake);
    const status = agentStatus({ host: HOST });
    await feed.putStatus(HOST, new TextEncoder().encode(JSON.stringify(status)));
    const res = await fetch(`${fake.url}/v1/kv/fleetplan/status/${HOST}`);
    const [entry] = (await res.json()) as { Value: string }[];
    assert.deepEqual(JSON.parse(Buffer.from(entry!.Value, "base64").toString()), status);
  });
});
