// `fleetplan server remove HOST --purge`: against a real nats-server, every per-host key of the
// store (plan, freshness, status, run output, enrollment) goes with its history, the host's NATS
// credentials are revoked and deleted, other hosts keep theirs; an unreachable store changes nothing.
// On Consul (the fake, with the coordinator's ACL policy), every per-host key is deleted.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { parseCredsText } from "../../coordinator/store/nats-credentials.ts";
import { coordinatorConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { consulHostKeys, natsHostKeys, purgeHostKeys } from "../../coordinator/store/purge-host.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import { AGENT_BIN, createCli, lastJson } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { createWorld } from "../helpers/fleet.ts";
import type { World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import { consulTestScope, putKey, storeConfigFor } from "../fakes/consul.ts";
import type { NatsServer } from "../helpers/nats.ts";

const HOSTS = ["web-1", "web-2"];

describe("server remove --purge", { timeout: 120_000 }, () => {
  let world: World;
  let nats: NatsServer;
  let nc: NatsConnection;
  let cli: Fleetplan;
  let credsDir: string;
  const keysOf = (host: string) => natsHostKeys(normalizeStoreConfig({ url: nats.url }, []), host);

  // The values stored under every per-host key of `host` (0 when none).
  const stored = async (host: string): Promise<number[]> => {
    const kvm = new Kvm(nc);
    return Promise.all(
      keysOf(host).map(async ({ bucket, key }) => {
        const history = await (await kvm.open(bucket)).history({ key });
        let n = 0;
        for await (const _ of history) n++;
        return n;
      }),
    );
  };

  before(
    async () => {
      world = await createWorld("fleetplan-purge-");
      nats = await startNats();
      cli = createCli(world, nats.url);
      await cli.expect(["init", "--json"]);
      await cli.expect(["store", "init", "--json"]);
      for (const host of HOSTS) {
        const dir = join(world.dir, host);
        await cli.expect(["keygen", "--out", dir], 0, { bin: AGENT_BIN });
        await cli.expect(["server", "add", host, "--node-key", readFileSync(join(dir, "node.pub"), "utf8").trim(), "--json"]);
      }
      credsDir = join(world.dir, "creds");
      await cli.expect(["store", "credentials", "--out", credsDir, "--json"]);
      nc = await connect({ servers: nats.url });
      const kvm = new Kvm(nc);
      for (const host of HOSTS) {
        for (const { bucket, key } of keysOf(host)) {
          const kv = await kvm.open(bucket);
          await kv.put(key, `first ${key}`);
          await kv.put(key, `second ${key}`);
        }
      }
    },
    { timeout: 90_000 },
  );

  after(async () => {
    await nc?.close();
    await nats?.stop();
    world?.cleanup();
  });

  test("an unreachable store: exit 4, the host stays in the inventory and keeps its credentials", { timeout: 30_000 }, async () => {
    const r = await cli.run(["server", "remove", "web-1", "--purge", "--creds-dir", credsDir], {
      env: { FLEETPLAN_STORE: "nats://127.0.0.1:1" },
    });
    assert.equal(r.code, 4, r.stderr);
    const list = lastJson<unknown>(await cli.expect(["server", "list", "--json"])) as Array<{ host: string }>;
    assert.deepEqual(
      list.map((s) => s.host),
      HOSTS,
    );
    assert.ok(existsSync(join(credsDir, "hosts", "web-1.creds")));
  });

  test("a --creds-dir that is not a credentials directory is refused before anything changes", { timeout: 30_000 }, async () => {
    const r = await cli.run(["server", "remove", "web-1", "--purge", "--creds-dir", world.dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--creds-dir: .* is not a `fleetplan store credentials --out` directory/);
    assert.ok((await stored("web-1")).every((n) => n > 0));
  });

  test("--purge deletes every key of the host with its history, revokes and deletes its credentials", { timeout: 60_000 }, async () => {
    const creds = parseCredsText(readFileSync(join(credsDir, "hosts", "web-1.creds"), "utf8"));
    assert.ok(creds);
    const conf = readFileSync(join(credsDir, "nats-server.conf"), "utf8");
    const held = await stored("web-1");
    assert.deepEqual(held, [2, 2, 1, 2, 1], "two puts each; the status and enrollment buckets keep one revision");
    const r = lastJson<{ ok: boolean; in_inventory: boolean; store_keys: Array<{ key: string; removed: number }>; credentials: string[] }>(
      await cli.expect(["server", "remove", "web-1", "--purge", "--creds-dir", credsDir, "--json"]),
    );
    assert.equal(r.in_inventory, true);
    assert.deepEqual(
      r.store_keys.map((k) => [k.key, k.removed]),
      keysOf("web-1").map(({ bucket, key }, i) => [`${bucket}/${key}`, held[i]]),
    );
    assert.deepEqual(await stored("web-1"), [0, 0, 0, 0, 0], "no value, revision or delete marker is left");
    assert.deepEqual(await stored("web-2"), held, "other hosts keep their keys");

    const list = lastJson<unknown>(await cli.expect(["server", "list", "--json"])) as Array<{ host: string }>;
    assert.deepEqual(
      list.map((s) => s.host),
      ["web-2"],
    );
    assert.equal(existsSync(join(credsDir, "hosts", "web-1.creds")), false);
    assert.ok(existsSync(join(credsDir, "hosts", "web-2.creds")));
    const revocations = JSON.parse(readFileSync(join(credsDir, "keys", "revocations.json"), "utf8")) as Record<string, number>;
    assert.ok(creds.claims.sub! in revocations, "web-1's user key is revoked in the account JWT");
    assert.notEqual(readFileSync(join(credsDir, "nats-server.conf"), "utf8"), conf, "nats-server.conf carries the revocation");
    assert.ok(
      r.credentials.some((l) => l.startsWith("revoked") && l.includes("web-1.creds")),
      r.credentials.join("\n"),
    );
  });

  test("without a credentials directory the keys are purged and the output says the credentials were not touched", {
    timeout: 60_000,
  }, async () => {
    const r = await cli.expect(["server", "remove", "web-2", "--purge"]);
    assert.match(r.stdout, /^removed web-2$/m);
    assert.match(r.stdout, /credentials not touched: pass --creds-dir DIR/);
    assert.deepEqual(await stored("web-2"), [0, 0, 0, 0, 0]);
    assert.ok(existsSync(join(credsDir, "hosts", "web-2.creds")));
  });
});

describe("server remove --purge on Consul", () => {
  const scope = consulTestScope();

  test("every per-host key is deleted with the coordinator's token; other hosts keep theirs", { timeout: 30_000 }, async () => {
    const fake = await scope.start({ policies: { "coordinator-token": coordinatorConsulPolicy() } });
    const headers = { "X-Consul-Token": "coordinator-token" };
    for (const host of HOSTS)
      for (const key of consulHostKeys(host)) assert.equal(await putKey(fake.url, key, `value of ${key}`, headers), 200);
    const purged = await purgeHostKeys(storeConfigFor(fake, "coordinator-token"), "web-1");
    assert.deepEqual(
      purged.map((p) => p.key),
      consulHostKeys("web-1"),
    );
    const status = async (key: string) => (await fetch(`${fake.url}/v1/kv/${key}`, { headers })).status;
    for (const key of consulHostKeys("web-1")) assert.equal(await status(key), 404, key);
    for (const key of consulHostKeys("web-2")) assert.equal(await status(key), 200, key);
  });
});
