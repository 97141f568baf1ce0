// Trust rotation through the store, against a real nats-server: `fleetplan trust rotate` publishes
// the next version, running agents adopt it on its notice, an envelope signed only by the removed key
// is then refused `untrusted_signer`, an agent that was offline walks the chain on start, and the
// adopted chain survives a restart without the store. Refusals leave the agent's version unchanged.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { main } from "../../coordinator/cli/main.ts";
import { sealEnvelope } from "../../shared/envelope.ts";
import { loadAdminKey, writeNewKey } from "../../shared/key-files.ts";
import { planFromScript } from "../../shared/plan.ts";
import { signTrust, trustDocument } from "../../shared/trust.ts";
import { trustKey } from "../../shared/trust-layout.ts";
import type { AdminKeyPair } from "../../shared/types.ts";
import { startKvScope, waitMetric } from "../helpers/agent-scope.ts";
import type { Node } from "../helpers/fleet.ts";
import { metricValue, startInProcess } from "../helpers/fleet.ts";
import { waitFor } from "../helpers/ports.ts";

type Scope = Awaited<ReturnType<typeof startKvScope>>;

const cli = async (args: string[]) => {
  let stdout = "";
  let stderr = "";
  const code = await main([...args, "--json"], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
};

const seal = (node: Node, id: number, signers: AdminKeyPair[]) =>
  sealEnvelope(planFromScript("true"), {
    id,
    target: node.host,
    nodePublicKey: node.keys.publicKey,
    signers,
    expires: Date.now() + 3_600_000,
  });

const VERSION = "fleetplan_agent_trust_version";

describe("trust rotation through the store (real nats-server)", { timeout: 120_000 }, () => {
  let scope: Scope;
  let nc: NatsConnection;
  let keys: { path: string; pair: AdminKeyPair; pub: string }[];
  let rotate: (extra: string[], signers: number[]) => ReturnType<typeof cli>;

  before(async () => {
    scope = await startKvScope();
    nc = await connect({ servers: scope.nats.url });
    // Admin keys: 0 is the world's (the agents' trust file), 1 and 2 are new.
    keys = [{ path: scope.world.adminKeyPath, pair: scope.world.admin, pub: join(scope.world.dir, "admin", "admin.pub") }];
    for (const name of ["b", "c"]) {
      const written = writeNewKey(join(scope.world.dir, name), "admin");
      keys.push({ path: written.privatePath, pair: loadAdminKey(written.privatePath), pub: written.publicPath });
    }
    rotate = (extra, signers) =>
      cli([
        "trust",
        "rotate",
        "--store",
        scope.nats.url,
        "--root",
        scope.world.trustPath,
        ...extra,
        ...signers.flatMap((i) => ["--admin-key", keys[i]!.path]),
      ]);
  });

  after(async () => {
    await nc?.close();
    await scope?.cleanup();
  });

  it("refuses a rotation without the new key's signature, or without the current key's, and publishes nothing", {
    timeout: 20_000,
  }, async () => {
    const onlyOld = await rotate(["--add", keys[1]!.pub, "--remove", keys[0]!.pair.keyId], [0]);
    assert.equal(onlyOld.code, 2, onlyOld.stdout);
    assert.match(JSON.parse(onlyOld.stderr || onlyOld.stdout).message, /new set.*--admin-key/);
    const onlyNew = await rotate(["--add", keys[1]!.pub, "--remove", keys[0]!.pair.keyId], [1]);
    assert.equal(onlyNew.code, 2);
    assert.ok(JSON.parse(onlyNew.stderr || onlyNew.stdout).message.includes(`needs 1 of the keys ${keys[0]!.pair.keyId}`));
    const shown = await cli(["trust", "show", "--store", scope.nats.url]);
    assert.deepEqual(JSON.parse(shown.stdout).versions, []);
  });

  it("a running agent adopts version 2; the removed key's envelope is untrusted_signer, the new key's runs", {
    timeout: 40_000,
  }, async () => {
    const node = await scope.node("web-1");
    const agent = await scope.agent(node);
    await waitMetric(node, VERSION, (v) => v === 1);
    const rotated = await rotate(["--add", keys[1]!.pub, "--remove", keys[0]!.pair.keyId], [0, 1]);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.deepEqual(JSON.parse(rotated.stdout).published, [1, 2]);
    await waitMetric(node, VERSION, (v) => v === 2);

    const old = agent.submit(seal(node, 10, [keys[0]!.pair]), { source: "test", revision: null });
    assert.equal(old.accepted, false);
    assert.equal(!old.accepted && old.reason, "untrusted_signer");
    await scope.kv.put(node.host, seal(node, 11, [keys[1]!.pair]));
    await waitFor(() => agent.ledger.highWaterMark().id === 11, 10_000, "the new key's envelope accepted");

    const shown = JSON.parse((await cli(["trust", "show", "--store", scope.nats.url])).stdout);
    assert.deepEqual(
      shown.versions.map((v: { version: number; key_ids: string[] }) => [v.version, v.key_ids]),
      [
        [1, [keys[0]!.pair.keyId]],
        [2, [keys[1]!.pair.keyId]],
      ],
    );
    await agent.stop();
  });

  it("an agent offline during two rotations walks the chain on start and takes the newest key's envelope", {
    timeout: 40_000,
  }, async () => {
    const node = await scope.node("db-1");
    const third = await rotate(["--add", keys[2]!.pub, "--remove", keys[1]!.pair.keyId], [1, 2]);
    assert.equal(third.code, 0, third.stderr);
    // The envelope is in the store before the agent starts: signed by a key its trust file never named.
    await scope.kv.put(node.host, seal(node, 20, [keys[2]!.pair]));
    const agent = await scope.agent(node);
    await waitFor(() => agent.ledger.highWaterMark().id === 20, 15_000, "the offline agent walked to version 3");
    assert.equal(await metricValue(node, VERSION), 3);
    // The chain was read before the envelope was judged: no untrusted_signer rejection to alert on.
    assert.equal(await metricValue(node, 'fleetplan_agent_envelopes_total{result="untrusted_signer"}'), 0);
    await agent.stop();
  });

  it("ignores a version skip and a forged next version; keeps the adopted chain across a restart without the store", {
    timeout: 40_000,
  }, async () => {
    const node = await scope.node("cache-1");
    const agent = await scope.agent(node);
    await waitMetric(node, VERSION, (v) => v === 3);
    const kv = await new Kvm(nc).open("fleetplan-plans");
    const c = keys[2]!.pair;
    const b = keys[1]!.pair;
    // Version 5 with no version 4: never fetched. Version 4 signed by the new key alone: refused.
    await kv.put(trustKey(5), signTrust(trustDocument(5, [b.publicKey], 1, Date.now() + 3_600_000), [b, c]));
    await kv.put(trustKey(4), signTrust(trustDocument(4, [b.publicKey], 1, Date.now() + 3_600_000), [b]));
    await sleep(1_000);
    assert.equal(await metricValue(node, VERSION), 3);
    const stillOld = agent.submit(seal(node, 30, [b]), { source: "test", revision: null });
    assert.equal(!stillOld.accepted && stillOld.reason, "untrusted_signer");
    await agent.stop();

    const offline = await startInProcess(node, { feed: null });
    try {
      const replay = offline.submit(seal(node, 31, [c]), { source: "test", revision: null });
      assert.equal(replay.accepted, true, JSON.stringify(replay));
      await offline.idle();
    } finally {
      await offline.stop();
    }
  });
});
