// The agent's NATS feed against a real nats-server: no consumer, notices + direct get, catch-up
// after a restart, a missed notice or a missing bucket, a recreated bucket, a handed-back revision,
// and the status put as a plain request. Pure decisions first.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { parseDirectGet, parsePubAck } from "../../agent/store/nats-direct.ts";
import { createNatsFeed, judgeRead } from "../../agent/store/nats-feed.ts";
import type { FleetplanError } from "../../shared/errors.ts";
import { createLogger, silentLogger } from "../../shared/log.ts";
import { kvStream } from "../../shared/store-layout.ts";
import type { PlanFeed, StoreConfig } from "../../shared/types.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { freePort, waitFor } from "../helpers/ports.ts";
import { initStoreLayout, testStoreConfig } from "../helpers/store-layout.ts";

const text = (s: string) => new TextEncoder().encode(s);
const BUCKET = "fleetplan-plans";

/** A feed following `host`, recording what it delivered and what it logged. */
const follow = (config: StoreConfig, host: string, opts: { safetyNetMs?: number; failFirst?: number } = {}) => {
  const got: { value: string; revision: number }[] = [];
  const logs: string[] = [];
  let failures = opts.failFirst ?? 0;
  const logger = createLogger({ level: "debug", write: (line) => void logs.push(line) });
  const feed: PlanFeed = createNatsFeed(config, { logger, ...(opts.safetyNetMs !== undefined && { safetyNetMs: opts.safetyNetMs }) });
  void feed.follow(host, {
    onEnvelope: async (envelope, revision) => {
      if (failures-- > 0) throw new Error("ledger is read-only");
      got.push({ value: new TextDecoder().decode(envelope), revision });
    },
  });
  return {
    feed,
    got,
    logs,
    values: () => got.map((g) => g.value),
    logged: (event: string) => logs.filter((l) => l.includes(`"${event}"`)).length,
  };
};

describe("nats feed decisions (pure)", () => {
  it("judgeRead: a higher sequence is new; a lower one is a reset only if the message is younger", () => {
    assert.equal(judgeRead({ seq: 5, time: 1000 }, { seq: 6, time: 900 }), "new");
    assert.equal(judgeRead({ seq: 5, time: 1000 }, { seq: 5, time: 1000 }), "old");
    assert.equal(judgeRead({ seq: 5, time: 1000 }, { seq: 3, time: 900 }), "old"); // a follower behind
    assert.equal(judgeRead({ seq: 5, time: 1000 }, { seq: 1, time: 2000 }), "reset"); // recreated bucket
  });

  it("parseDirectGet: 404 is a missing key, KV-Operation marks a delete, other statuses are errors", () => {
    const headers = (entries: Record<string, string>, code = 0) => ({
      code,
      description: code ? "Message Not Found" : "",
      get: (k: string) => entries[k] ?? "",
    });
    assert.deepEqual(parseDirectGet({ headers: headers({}, 404) as never, data: new Uint8Array() }), { found: false });
    const hit = { "Nats-Sequence": "7", "Nats-Time-Stamp": "2026-12-05T18:17:20.343411001Z" };
    assert.deepEqual(parseDirectGet({ headers: headers(hit) as never, data: text("x") }), {
      found: true,
      seq: 7,
      time: Date.parse("2026-12-05T18:17:20.343Z"),
      deleted: false,
      value: text("x"),
    });
    const purged = parseDirectGet({ headers: headers({ ...hit, "KV-Operation": "PURGE" }) as never, data: new Uint8Array() });
    assert.equal(purged.found && purged.deleted, true);
    assert.throws(
      () => parseDirectGet({ headers: headers({}, 503) as never, data: new Uint8Array() }),
      (e: FleetplanError) => e.reason === "store_unavailable",
    );
  });

  it("parsePubAck: the sequence, or the server's error as store_rejected", () => {
    assert.equal(parsePubAck(text('{"stream":"KV_s", "seq":4}'), "$KV.s.h"), 4);
    assert.throws(
      () => parsePubAck(text('{"error":{"code":400,"err_code":10077,"description":"maximum messages exceeded"}}'), "$KV.s.h"),
      (e: FleetplanError) => e.reason === "store_rejected" && /maximum messages exceeded/.test(e.message),
    );
    assert.throws(
      () => parsePubAck(text("+OK"), "$KV.s.h"),
      (e: FleetplanError) => e.reason === "store_rejected",
    );
  });
});

describe("nats feed against a real nats-server", { timeout: 120_000 }, () => {
  let nats: NatsServer;
  let config: StoreConfig;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let plans: KV;
  const feeds: PlanFeed[] = [];
  const start = (host: string, opts: Parameters<typeof follow>[2] = {}, cfg = config) => {
    const f = follow(cfg, host, opts);
    feeds.push(f.feed);
    return f;
  };

  before(async () => {
    nats = await startNats();
    config = { ...testStoreConfig(nats.url), timeoutMs: 1_000 };
    await initStoreLayout(config);
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    jsm = await jetstreamManager(nc);
    plans = await new Kvm(nc).open(BUCKET);
  });

  after(async () => {
    await Promise.all(feeds.map((f) => f.close()));
    await nc?.close();
    await nats?.stop();
  });

  it("delivers the value present at start, then each put, with no consumer on either stream", { timeout: 20_000 }, async () => {
    const r1 = await plans.put("web.1", text("v1"));
    const f = start("web.1");
    await waitFor(() => f.got.length === 1, 5_000, "the value present at start");
    assert.deepEqual(f.got, [{ value: "v1", revision: r1 }]);
    const r2 = await plans.put("web.1", text("v2"));
    await plans.put("web.10", text("not mine")); // a host whose name extends this one's
    await waitFor(() => f.got.length === 2, 2_000, "the put, through its notice");
    assert.deepEqual(f.got[1], { value: "v2", revision: r2 });
    for (const bucket of [BUCKET, "fleetplan-status"]) {
      assert.equal((await jsm.consumers.list(kvStream(bucket)).next()).length, 0, `consumers on ${bucket}`);
    }
    await sleep(200);
    assert.deepEqual(f.values(), ["v1", "v2"]);
  });

  it("replies go to the host's own inbox prefix (dots mapped to ~)", { timeout: 20_000 }, async () => {
    const seen: string[] = [];
    const spy = nc.subscribe("fleetplan.inbox.>", { callback: (_e, m) => void seen.push(m.subject) });
    await nc.flush();
    const f = start("db.eu-1");
    await plans.put("db.eu-1", text("x"));
    await waitFor(() => f.got.length === 1, 5_000, "the put");
    await nc.flush(); // the spy is on another connection: copies of the replies may still be on the way
    spy.unsubscribe();
    assert.ok(seen.length > 0 && seen.every((s) => s.startsWith("fleetplan.inbox.db~eu-1.")), seen.join(" "));
  });

  it("newest wins: puts in a burst end with the last value delivered, none twice", { timeout: 20_000 }, async () => {
    const f = start("burst-1");
    await waitFor(() => f.logged("store_connected") === 1, 5_000, "connected");
    for (let i = 1; i <= 20; i++) await plans.put("burst-1", text(`v${i}`));
    await waitFor(() => f.values().at(-1) === "v20", 5_000, "the last value");
    const revisions = f.got.map((g) => g.revision);
    assert.deepEqual(
      revisions,
      [...new Set(revisions)].sort((a, b) => a - b),
    );
  });

  it("a value whose delivery was handed back (onEnvelope threw) is read again with backoff", { timeout: 20_000 }, async () => {
    const f = start("ledger-1", { failFirst: 2 });
    const rev = await plans.put("ledger-1", text("keep trying"));
    await waitFor(() => f.got.length === 1, 10_000, "the third attempt");
    assert.deepEqual(f.got, [{ value: "keep trying", revision: rev }]);
    assert.ok(f.logged("store_read_failed") >= 2);
  });

  it("a missed notice: the safety-net re-read delivers it and says so", { timeout: 20_000 }, async () => {
    // Subscribed under another prefix, the feed hears no notice at all: only the re-read delivers.
    const f = start("deaf-1", { safetyNetMs: 1_000 }, { ...config, notifyPrefix: "elsewhere" });
    await waitFor(() => f.logged("store_connected") === 1, 5_000, "connected");
    await plans.put("deaf-1", text("late"));
    await waitFor(() => f.got.length === 1, 5_000, "the safety net");
    assert.equal(f.logged("store_notice_missed"), 1);
  });

  it("a deleted key delivers nothing; the next put is delivered", { timeout: 20_000 }, async () => {
    await plans.put("del-1", text("a"));
    const f = start("del-1");
    await waitFor(() => f.got.length === 1, 5_000, "a");
    await plans.delete("del-1");
    await plans.put("del-1", text("b"));
    await waitFor(() => f.got.length === 2, 5_000, "b");
    assert.deepEqual(f.values(), ["a", "b"]);
  });

  it("a recreated bucket (sequences start again) resets: the new value is delivered", { timeout: 30_000 }, async () => {
    for (let i = 0; i < 5; i++) await plans.put("reset-1", text(`old${i}`));
    const f = start("reset-1");
    await waitFor(() => f.values().at(-1) === "old4", 5_000, "old4");
    await jsm.streams.delete(kvStream(BUCKET));
    await initStoreLayout(config);
    const rev = await plans.put("reset-1", text("new"));
    assert.ok(rev < f.got.at(-1)!.revision);
    await waitFor(() => f.values().at(-1) === "new", 5_000, "the value after the reset");
    assert.equal(f.logged("store_revision_reset"), 1);
  });

  it("putStatus stores the record bytes under the host's status key; no bucket is store_bucket_missing", { timeout: 20_000 }, async () => {
    const f = start("status-1");
    // Called at once, as the agent does at start: it waits for the first connection, no failure.
    await f.feed.putStatus("status-1", text("signed record"));
    const statuses = await new Kvm(nc).open("fleetplan-status");
    assert.equal(new TextDecoder().decode((await statuses.get("status-1"))!.value), "signed record");
    const g = start("status-2", {}, { ...config, statusBucket: "no-such-bucket" });
    await waitFor(() => g.logged("store_connected") === 1, 5_000, "connected");
    await assert.rejects(
      g.feed.putStatus("status-2", text("x")),
      (e: FleetplanError) => e.reason === "store_bucket_missing" && /store init/.test(e.message),
    );
  });

  it("closed while its first connect waits for a server that is not there yet: no connection is left behind", {
    timeout: 40_000,
  }, async () => {
    const port = await freePort();
    const feed = createNatsFeed(testStoreConfig(`nats://127.0.0.1:${port}`), { logger: silentLogger });
    void feed.follow("late-1", { onEnvelope: async () => {} });
    await sleep(300);
    await feed.close();
    const monitorPort = await freePort();
    const late = await startNats({ port, extraArgs: ["-m", String(monitorPort)] });
    try {
      await sleep(3_000); // the pending connect retries about once a second
      const connz = (await (await fetch(`http://127.0.0.1:${monitorPort}/connz`)).json()) as { num_connections: number };
      assert.equal(connz.num_connections, 0, "the feed's connection was closed as soon as it opened");
    } finally {
      await late.stop();
    }
  });

  it("catches up after a server restart: a put made while it was away is delivered", { timeout: 40_000 }, async () => {
    const f = start("restart-1");
    await plans.put("restart-1", text("before"));
    await waitFor(() => f.got.length === 1, 5_000, "before");
    await nats.kill9();
    await nats.restart();
    // Put from a connection of our own as soon as the server is back, likely before the feed reconnected.
    const own = await connect({ servers: nats.url });
    const kv = await new Kvm(own).open(BUCKET);
    await waitFor(async () => (await kv.put("restart-1", text("after")).catch(() => null)) !== null, 15_000, "a put after the restart");
    await own.close();
    await waitFor(() => f.values().at(-1) === "after", 15_000, "after, through the reconnect read");
    assert.deepEqual(f.values(), ["before", "after"]);
  });
});

describe("nats feed: the bucket does not exist yet", { timeout: 60_000 }, () => {
  it("waits and retries, logging store_bucket_missing, then delivers once `store init` created it", { timeout: 40_000 }, async () => {
    const nats = await startNats();
    const config = { ...testStoreConfig(nats.url), timeoutMs: 500 };
    const f = follow(config, "early-1");
    try {
      await waitFor(() => f.logged("store_bucket_missing") >= 2, 10_000, "two missing-bucket retries");
      assert.match(f.logs.find((l) => l.includes("store_bucket_missing"))!, /fleetplan store init/);
      await initStoreLayout(config);
      const nc = await connect({ servers: nats.url });
      await (await new Kvm(nc).open(BUCKET)).put("early-1", text("finally"));
      await nc.close();
      await waitFor(() => f.got.length === 1, 10_000, "the value after init");
      assert.deepEqual(f.values(), ["finally"]);
      const own = await connect({ servers: nats.url });
      assert.equal((await (await jetstreamManager(own)).consumers.list(kvStream(BUCKET)).next()).length, 0);
      await own.close();
    } finally {
      await f.feed.close();
      await nats.stop();
    }
  });
});
