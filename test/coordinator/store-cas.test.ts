// A put never replaces a newer envelope signed by our admin key, also when coordinators race:
// both stores write compare-and-set against the value they judged (real nats-server; the Consul
// fake, which honours ?cas= as Consul documents it).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { keepNewer } from "../../coordinator/decide.ts";
import { createConsulStore } from "../../coordinator/store/consul-store.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { silentLogger } from "../../shared/log.ts";
import { adminKeyFromSeed, nodeKeyFromSeed, parseEnvelope, sealEnvelope, sodiumReady } from "../../shared/mod.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import type { PlanStore } from "../../shared/types.ts";
import { consulTestScope, storeConfigFor } from "../fakes/consul.ts";
import { openPlanBucket } from "../helpers/kv.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";

await sodiumReady();
const ADMIN = adminKeyFromSeed(new Uint8Array(32).fill(3));
const STRANGER = adminKeyFromSeed(new Uint8Array(32).fill(4));
const NODE = nodeKeyFromSeed(new Uint8Array(32).fill(5));
const TRUST = { keys: new Map([[ADMIN.keyId, ADMIN.publicKey]]), threshold: 1 };
const HOST = "web-1";

const envelope = (id: number, signer = ADMIN, target = HOST): Uint8Array =>
  sealEnvelope(
    { kind: "fleetplan/plan", v: 1, files: [], steps: [{ name: "s", run: `echo ${id}` }] },
    {
      id,
      target,
      nodePublicKey: NODE.publicKey,
      signers: [signer],
      expires: Date.now() + 3_600_000,
    },
  );
const keepFor = (id: number) => (current: Uint8Array) => keepNewer(current, { host: HOST, id }, TRUST);
const idOf = (bytes: Uint8Array) => parseEnvelope(bytes).header.id;

describe("keepNewer", () => {
  it("keeps an envelope of ours with an equal or higher id", () => {
    assert.match(keepNewer(envelope(7), { host: HOST, id: 7 }, TRUST) ?? "", /holds id 7/);
    assert.match(keepNewer(envelope(9), { host: HOST, id: 7 }, TRUST) ?? "", /holds id 9/);
  });

  it("replaces a lower id, another signer's envelope, or bytes that are no envelope", () => {
    assert.equal(keepNewer(envelope(6), { host: HOST, id: 7 }, TRUST), null);
    assert.equal(keepNewer(envelope(99, STRANGER), { host: HOST, id: 7 }, TRUST), null);
    assert.equal(keepNewer(new TextEncoder().encode("garbage"), { host: HOST, id: 7 }, TRUST), null);
    const forged = envelope(99);
    forged[forged.length - 1]! ^= 1;
    assert.equal(keepNewer(forged, { host: HOST, id: 7 }, TRUST), null);
  });

  it("replaces our envelope for another host copied under this host's key, however high its id", () => {
    assert.equal(keepNewer(envelope(99, ADMIN, "web-2"), { host: HOST, id: 7 }, TRUST), null);
  });
});

/** The same assertions against each store: `open` gives a store and a way to read HOST's value. */
const casSuite = (name: string, open: () => Promise<{ store: PlanStore; read: () => Promise<Uint8Array | null> }>) =>
  describe(`${name} store: compare-and-set puts`, () => {
    it("refuses to replace a newer envelope of ours (superseded) and leaves it in place", async () => {
      const { store, read } = await open();
      await store.put(HOST, envelope(10), keepFor(10));
      await assert.rejects(store.put(HOST, envelope(8), keepFor(8)), (e: Error & { reason?: string }) => {
        assert.equal(e.reason, "superseded");
        assert.match(e.message, /holds id 10/);
        return true;
      });
      await assert.rejects(store.put(HOST, envelope(10), keepFor(10)), { reason: "superseded" });
      assert.equal(idOf((await read())!), 10);
      await store.put(HOST, envelope(11), keepFor(11));
      assert.equal(idOf((await read())!), 11);
    });

    it("replaces a value that is not an envelope of ours", async () => {
      const { store, read } = await open();
      await store.put(HOST, envelope(500, STRANGER));
      await store.put(HOST, envelope(3), keepFor(3));
      assert.equal(idOf((await read())!), 3);
    });

    it("ends on the highest id when 12 puts race in shuffled order", async () => {
      const { store, read } = await open();
      const ids = [7, 2, 12, 5, 9, 1, 11, 4, 8, 3, 10, 6];
      const results = await Promise.allSettled(ids.map((id) => store.put(HOST, envelope(id), keepFor(id))));
      const reasons = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as { reason?: string }).reason] : []));
      assert.ok(
        reasons.every((reason) => reason === "superseded"),
        JSON.stringify(reasons),
      );
      assert.equal(results[ids.indexOf(12)]!.status, "fulfilled", "the highest id is never refused");
      assert.equal(idOf((await read())!), 12);
    });
  });

let nats: NatsServer;
const closers: (() => Promise<void>)[] = [];
before(async () => {
  nats = await startNats();
});
after(async () => {
  await Promise.all(closers.map((close) => close()));
  await nats.stop();
});

let bucket = 0;
casSuite("nats", async () => {
  // A bucket per test: each starts with no value for HOST.
  const planBucket = `plans-${++bucket}`;
  const store = await createNatsStore(normalizeStoreConfig({ url: nats.url, planBucket }, []), { logger: silentLogger, attempts: 1 });
  const plans = await openPlanBucket(nats.url, planBucket);
  closers.push(
    () => store.close(),
    () => plans.close(),
  );
  return { store, read: async () => (await plans.kv.get(HOST))?.value ?? null };
});

const consul = consulTestScope();
casSuite("consul", async () => {
  const fake = await consul.start();
  const store = consul.defer(createConsulStore(storeConfigFor(fake), { waitMs: 1_000, backoff: { initialMs: 20, maxMs: 100 } }));
  return {
    store,
    read: async () => {
      const res = await fetch(`${fake.url}/v1/kv/fleetplan/plans/${HOST}`);
      return res.status === 200 ? new Uint8Array(Buffer.from(((await res.json()) as { Value: string }[])[0]!.Value, "base64")) : null;
    },
  };
});
