// Trust documents and freshness records through Consul KV (the fake, with the ACL policies
// `store credentials --consul` writes): every host reads every trust version, only its own
// freshness record, and writes neither; the agent's trust keeper walks the chain through its feed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { createFeed } from "../../agent/store/select.ts";
import { createTrustKeeper } from "../../agent/trust-chain.ts";
import { coordinatorConsulPolicy, hostConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { openSideStore } from "../../coordinator/trust-store.ts";
import type { FleetplanError } from "../../shared/errors.ts";
import { signFreshness } from "../../shared/freshness.ts";
import { generateAdminKey } from "../../shared/keys.ts";
import { silentLogger } from "../../shared/log.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { signTrust, trustDocument } from "../../shared/trust.ts";
import { consulFreshKey, consulTrustKey } from "../../shared/trust-layout.ts";
import type { AdminKeyPair } from "../../shared/types.ts";
import { consulTestScope, storeConfigFor } from "../fakes/consul.ts";

describe("trust and freshness through Consul KV with per-host ACL policies", { timeout: 30_000 }, () => {
  const scope = consulTestScope();
  let a: AdminKeyPair, b: AdminKeyPair;
  before(async () => {
    await sodiumReady();
    [a, b] = [generateAdminKey(), generateAdminKey()];
  });

  it("a host reads trust versions and its own freshness record only; its agent walks the chain", { timeout: 20_000 }, async () => {
    const fake = await scope.start({ policies: { coord: coordinatorConsulPolicy(), a: hostConsulPolicy("host-a") } });
    const side = scope.defer(await openSideStore(storeConfigFor(fake, "coord")));
    const v2 = signTrust(trustDocument(2, [b.publicKey], 1, Date.now() + 3_600_000), [a, b]);
    await side.create(consulTrustKey(2), v2);
    await assert.rejects(side.create(consulTrustKey(2), v2), (e: FleetplanError) => e.reason === "conflict");
    const fresh = (host: string) => signFreshness({ host, latest_id: 1, issued: Date.now(), expires: Date.now() + 60_000 }, [b]);
    await side.put(consulFreshKey("host-a"), fresh("host-a"));
    await side.put(consulFreshKey("host-b"), fresh("host-b"));

    const store = storeConfigFor(fake, "a");
    const feed = scope.defer(createFeed(store, silentLogger));
    assert.deepEqual(await feed.readSide!(consulTrustKey(2)), v2);
    assert.equal(await feed.readSide!(consulTrustKey(3)), null);
    assert.deepEqual(await feed.readSide!(consulFreshKey("host-a")), await side.get(consulFreshKey("host-a")));
    await assert.rejects(feed.readSide!(consulFreshKey("host-b")), /Permission denied|403|denied/i);
    const forged = await fetch(`${fake.url}/v1/kv/${consulTrustKey(3)}`, { method: "PUT", headers: { "X-Consul-Token": "a" }, body: "x" });
    assert.equal(forged.status, 403);

    const stateDir = mkdtempSync(join(tmpdir(), "fleetplan-trust-consul-"));
    try {
      const keeper = createTrustKeeper({
        root: { keys: new Map([[a.keyId, a.publicKey]]), threshold: 1 },
        stateDir,
        store,
        feed,
        log: silentLogger,
        now: Date.now,
      });
      assert.equal(await keeper.refresh(), true);
      assert.equal(keeper.version(), 2);
      assert.deepEqual([...keeper.current().keys.keys()], [b.keyId]);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
