// Sealed run output through Consul KV with the ACL policies `store credentials --consul` writes: a
// host puts only its own `fleetplan/logs/HOST`, the coordinator reads it and opens it with the admin key.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { createFeed } from "../../agent/store/select.ts";
import { createConsulStore } from "../../coordinator/store/consul-store.ts";
import { coordinatorConsulPolicy, hostConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { generateAdminKey, generateNodeKey } from "../../shared/keys.ts";
import { silentLogger } from "../../shared/log.ts";
import { openOutput, sealOutput } from "../../shared/output-seal.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AdminKeyPair, NodeKeyPair } from "../../shared/types.ts";
import { consulTestScope, storeConfigFor } from "../fakes/consul.ts";

describe("fleetplan logs through Consul KV", { timeout: 30_000 }, () => {
  const scope = consulTestScope();
  let admin: AdminKeyPair;
  let node: NodeKeyPair;
  before(async () => {
    await sodiumReady();
    [admin, node] = [generateAdminKey(), generateNodeKey()];
  });

  it("a host puts its own output record only; the coordinator reads and opens it", { timeout: 20_000 }, async () => {
    const fake = await scope.start({ policies: { coord: coordinatorConsulPolicy(), a: hostConsulPolicy("host-a") } });
    const feed = scope.defer(createFeed(storeConfigFor(fake, "a"), silentLogger));
    const meta = { host: "host-a", id: 5, at: Date.now(), failure_reason: "step_timeout", exit_code: null, failed_step: 0 };
    const record = sealOutput(meta, new TextEncoder().encode("still waiting for the lock\n"), [admin.publicKey], node.identity.privateKey);
    await feed.putOutput!("host-a", record);
    await assert.rejects(feed.putOutput!("host-b", record), /Permission denied|403|denied/i);
    const store = scope.defer(createConsulStore(storeConfigFor(fake, "coord"), { logger: silentLogger, attempts: 1 }));
    const [stored, ...older] = await store.outputs!("host-a");
    assert.equal(older.length, 0);
    const opened = openOutput(stored!, "host-a", node.identity.publicKey, admin);
    assert.equal(new TextDecoder().decode(opened.output), "still waiting for the lock\n");
    assert.equal(opened.failure_reason, "step_timeout");
    assert.deepEqual(await store.outputs!("host-b"), []);
  });
});
