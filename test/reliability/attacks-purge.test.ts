// Attacks on `server remove HOST --purge` (coordinator/store/purge-host.ts): the host name becomes a
// NATS subject filter and a Consul path, so `*`, `>`, a trust key or a path with `/` or `..` would
// purge other hosts' keys. Against a real nats-server and the Consul fake: refused, nothing purged.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { coordinatorConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { consulHostKeys, purgeHostKeys } from "../../coordinator/store/purge-host.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import { freshKey, trustKey } from "../../shared/trust-layout.ts";
import { consulTestScope, putKey, storeConfigFor } from "../fakes/consul.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";

const refused = (e: unknown) => e instanceof FleetplanError && e.reason === "invalid_argument" && /nothing purged/.test(e.message);
const WILD = ["*", ">", "web-*", trustKey(1), freshKey("web-1"), "web-1 web-2", ""];

describe("purge: a host name is never a wildcard (NATS)", { timeout: 60_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  const keys = ["web-1", "web-2", trustKey(1), freshKey("web-1")];

  before(
    async () => {
      nats = await startNats();
      nc = await connect({ servers: nats.url });
      kv = await new Kvm(nc).create(normalizeStoreConfig({ url: nats.url }, []).planBucket, { history: 5 });
      for (const key of keys) await kv.put(key, `value of ${key}`);
    },
    { timeout: 30_000 },
  );
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  test("`*`, `>`, a wildcard, a trust or freshness key, a space or nothing: refused, every key kept", { timeout: 30_000 }, async () => {
    const config = normalizeStoreConfig({ url: nats.url }, []);
    for (const host of WILD) await assert.rejects(purgeHostKeys(config, host), refused, JSON.stringify(host));
    for (const key of keys) assert.equal((await kv.get(key))?.string(), `value of ${key}`, key);
    await purgeHostKeys(config, "web-1");
    assert.equal(await kv.get("web-1"), null);
    assert.equal((await kv.get("web-2"))?.string(), "value of web-2", "a real purge still touches its host only");
  });
});

describe("purge: a host name is never a path (Consul)", () => {
  const scope = consulTestScope();

  test("`..` and `/` cannot reach another prefix or host", { timeout: 30_000 }, async () => {
    const fake = await scope.start({ policies: { "coordinator-token": coordinatorConsulPolicy() } });
    const headers = { "X-Consul-Token": "coordinator-token" };
    for (const key of [...consulHostKeys("web-2"), "fleetplan/trust/1"]) assert.equal(await putKey(fake.url, key, "kept", headers), 200);
    const config = storeConfigFor(fake, "coordinator-token");
    for (const host of ["web-2/x", "../trust/1", "..", ...WILD]) await assert.rejects(purgeHostKeys(config, host), refused, host);
    const status = async (key: string) => (await fetch(`${fake.url}/v1/kv/${key}`, { headers })).status;
    for (const key of [...consulHostKeys("web-2"), "fleetplan/trust/1"]) assert.equal(await status(key), 200, key);
  });
});
