// A put on the revision our last put left (remembered per host in the coordinator database)
// skips the read, and falls back to read-then-compare-and-set whenever the key moved since:
// another writer, or a bucket recreated under the same name (real nats-server).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { keepNewer } from "../../coordinator/decide.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { silentLogger } from "../../shared/log.ts";
import { adminKeyFromSeed, nodeKeyFromSeed, parseEnvelope, sealEnvelope, sodiumReady } from "../../shared/mod.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import { directGetSubject } from "../../shared/store-layout.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { inventory, openCoordinatorDb, pushAll } from "./push-batches-fixture.ts";

await sodiumReady();
const ADMIN = adminKeyFromSeed(new Uint8Array(32).fill(3));
const NODE = nodeKeyFromSeed(new Uint8Array(32).fill(5));
const TRUST = { keys: new Map([[ADMIN.keyId, ADMIN.publicKey]]), threshold: 1 };
const HOST = "web-1";
const T = { timeout: 30_000 };

const envelope = (id: number): Uint8Array =>
  sealEnvelope(
    { kind: "fleetplan/plan", v: 1, files: [], steps: [{ name: "s", run: `echo ${id}` }] },
    {
      id,
      target: HOST,
      nodePublicKey: NODE.publicKey,
      signers: [ADMIN],
      expires: Date.now() + 3_600_000,
    },
  );
const keepFor = (id: number) => (current: Uint8Array) => keepNewer(current, { host: HOST, id }, TRUST);

let nats: NatsServer;
let nc: NatsConnection;
let tmp: string;
before(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  tmp = mkdtempSync(join(tmpdir(), "fleetplan-cas-base-"));
});
after(async () => {
  await nc.close();
  await nats.stop();
  rmSync(tmp, { recursive: true, force: true });
});

let bucket = 0;
/** A store on a bucket of its own, the bucket through plain nats.js, and a count of the direct gets sent to it. */
const open = async (planBucket = `base-${++bucket}`) => {
  const store = await createNatsStore(normalizeStoreConfig({ url: nats.url, planBucket }, []), { logger: silentLogger, attempts: 1 });
  const kv = await new Kvm(nc).open(planBucket);
  let reads = 0;
  const sub = nc.subscribe(directGetSubject(planBucket, HOST), { callback: () => void reads++ });
  await nc.flush();
  const idAt = async () => parseEnvelope((await kv.get(HOST))!.value).header.id;
  return {
    store,
    kv,
    planBucket,
    idAt,
    reads: () => reads,
    close: async () => {
      sub.unsubscribe();
      await store.close();
    },
  };
};

describe("nats store: puts on a remembered base", () => {
  it("replaces the value at the base without reading it", T, async () => {
    const s = await open();
    const first = await s.store.put(HOST, envelope(1), keepFor(1));
    assert.ok(first.epoch?.startsWith(`${s.planBucket}@`), String(first.epoch));
    await nc.flush();
    const readsBefore = s.reads();
    const second = await s.store.put(HOST, envelope(2), keepFor(2), { epoch: first.epoch!, revision: first.revision });
    await nc.flush();
    assert.equal(s.reads(), readsBefore, "no direct get");
    assert.ok(second.revision > first.revision);
    assert.equal(await s.idAt(), 2);
    await s.close();
  });

  it("reads and refuses to replace a newer envelope of ours written since the base (superseded)", T, async () => {
    const s = await open();
    const mine = await s.store.put(HOST, envelope(5), keepFor(5));
    await s.kv.put(HOST, envelope(10)); // another coordinator, same admin key
    const base = { epoch: mine.epoch!, revision: mine.revision };
    await assert.rejects(s.store.put(HOST, envelope(8), keepFor(8), base), { reason: "superseded" });
    assert.equal(await s.idAt(), 10);
    assert.ok(s.reads() > 0, "fell back to reading the key");
    await s.store.put(HOST, envelope(11), keepFor(11), base);
    assert.equal(await s.idAt(), 11);
    await s.close();
  });

  it('puts a host never delivered to on "absent" unread, and reads when the key exists after all', T, async () => {
    const s = await open();
    const absent = { epoch: "", revision: 0 };
    await nc.flush();
    const readsBefore = s.reads();
    const first = await s.store.put(HOST, envelope(5), keepFor(5), absent);
    await nc.flush();
    assert.equal(s.reads(), readsBefore, "no direct get for an absent key");
    assert.ok(first.revision > 0);
    await assert.rejects(s.store.put(HOST, envelope(3), keepFor(3), absent), { reason: "superseded" });
    await nc.flush(); // the counting subscription is on another connection: its messages may still be on the way
    assert.ok(s.reads() > readsBefore, "fell back to reading the key");
    assert.equal(await s.idAt(), 5);
    await s.close();
  });

  it("ignores a base from a bucket since deleted and recreated, even at the same revision", T, async () => {
    const s = await open();
    const old = await s.store.put(HOST, envelope(5), keepFor(5));
    await s.close();
    const kvm = new Kvm(nc);
    await (await kvm.open(s.planBucket)).destroy();
    const config = normalizeStoreConfig({ url: nats.url, planBucket: s.planBucket }, []);
    const again = await createNatsStore(config, { logger: silentLogger, attempts: 1 });
    const kv = await kvm.open(s.planBucket);
    assert.equal(await kv.put(HOST, envelope(10)), old.revision, "the newer envelope sits at the remembered revision");
    await assert.rejects(again.put(HOST, envelope(8), keepFor(8), { epoch: old.epoch!, revision: old.revision }), { reason: "superseded" });
    assert.equal(parseEnvelope((await kv.get(HOST))!.value).header.id, 10);
    await again.close();
  });
});

describe("push remembers where its puts left each key", () => {
  it("records each delivered host's revision in the batch transaction and puts on it next time, unread", T, async () => {
    const db = openCoordinatorDb(join(tmp, "fleetplan.db"));
    db.addServers(inventory(5));
    const revisionsOf = (summaryRevisions: Map<string, number>) => Object.fromEntries([...summaryRevisions].sort());
    let reads = 0;
    const sub = nc.subscribe("$JS.API.DIRECT.GET.>", { callback: () => void reads++ });
    for (const [n, now] of [new Date("2026-06-01T12:00:00Z"), new Date("2026-06-01T12:00:05Z")].entries()) {
      reads = 0;
      const put = new Map<string, number>();
      const summary = await pushAll(db, nats.url, now, {
        tuning: { batchSize: 2 },
        emit: (e) => void (e.event === "put" && put.set(e.host, e.revision!)),
      });
      assert.equal(summary.counts.pushed, 5, JSON.stringify(summary.counts));
      const remembered = new Map([...db.putBases()].map(([host, base]) => [host, base.revision]));
      assert.deepEqual(revisionsOf(remembered), revisionsOf(put));
      await nc.flush();
      assert.equal(reads, 0, `push ${n}: direct gets (the first puts on "absent", the second on the remembered revisions)`);
    }
    sub.unsubscribe();
    db.close();
  });
});
