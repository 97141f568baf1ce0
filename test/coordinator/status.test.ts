// fleetStatus: metrics that another server serves are no data for this one, and the store's
// status records prove failures without ever holding status up or failing it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { fleetStatus, STORE_READ_MS, storeStatuses } from "../../coordinator/cli/status.ts";
import type { StatusRow } from "../../coordinator/cli/status.ts";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { CoordinatorDb } from "../../coordinator/db.ts";
import { validateServerInput } from "../../coordinator/inventory.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { formatNodePublic, generateNodeKey } from "../../shared/keys.ts";
import { silentLogger } from "../../shared/log.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { signStatusRecord } from "../../shared/status.ts";
import { normalizeStoreConfig, STORE_DEFAULTS } from "../../shared/store-config.ts";
import type { AgentStatus, NodeKeyPair, StatusRecord } from "../../shared/types.ts";
import { agentExposition, startExposer } from "../helpers/metrics-server.ts";
import type { Exposer } from "../helpers/metrics-server.ts";
import { startNats } from "../helpers/nats.ts";
import { initStoreLayout } from "../helpers/store-layout.ts";
import { agentStatus } from "../helpers/status.ts";

await sodiumReady();
const HASH = "e".repeat(64);
const ID = 20250307090501;
const BOOT = 1_741_330_000;
const HOSTS = ["web-1", "web-2", "web-3", "web-4"];
const keys = new Map<string, NodeKeyPair>(HOSTS.map((h) => [h, generateNodeKey()]));
const keyId = (host: string) => keys.get(host)!.keyId;

/** An agent at `id` (converged when it is ID) that names itself `host` with `key`. */
const body = (host: string, key: string, id = ID) =>
  agentExposition({
    applied: { id, planHash: id === ID ? HASH : "f".repeat(64), bootTime: BOOT },
    acceptedId: id,
    bootTime: BOOT,
    lastRun: { success: true, finishedAt: Date.now(), durationMs: 5 },
    host,
    nodeKeyId: key,
  });

const status = (over: Partial<AgentStatus>): AgentStatus =>
  agentStatus({
    host: "web-4",
    state: "rejected",
    id: ID,
    plan_hash: HASH,
    since: Date.now(),
    boot_time: BOOT,
    result: "wrong_target",
    ...over,
  });
/** web-4's record as its agent would write it: signed with its own node identity. */
const signed = (st: AgentStatus): StatusRecord => ({ key: st.host, value: signStatusRecord(st, keys.get(st.host)!.identity.privateKey) });

describe("fleetStatus", { timeout: 30_000 }, () => {
  let dir: string;
  let db: CoordinatorDb;
  let exposer: Exposer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fleetplan-status-"));
    exposer = await startExposer({
      "/web-1/metrics": { body: await body("web-1", keyId("web-1")) },
      // web-3 reinstalled with a new node key the inventory does not know.
      "/web-3/metrics": { body: await body("web-3", generateNodeKey().keyId) },
      "/web-4/metrics": { body: await body("web-4", keyId("web-4"), ID - 1) },
    });
    db = openCoordinatorDb(join(dir, "fleetplan.db"));
    // web-2's metrics URL was copied from web-1's.
    const url = (host: string) => `${exposer.origin}/${host === "web-2" ? "web-1" : host}/metrics`;
    db.addServers(
      HOSTS.map((host) =>
        validateServerInput({
          host,
          node_key: formatNodePublic(keys.get(host)!.publicKey, keys.get(host)!.identity.publicKey),
          metrics: url(host),
        }),
      ),
    );
    for (const host of HOSTS) db.setExpected(host, ID, HASH, Date.now());
  });
  after(async () => {
    db?.close();
    await exposer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rows = async (statuses?: () => Promise<StatusRecord[]>) =>
    new Map(
      (await fleetStatus(db, db.servers(), { maxAgeMs: 60_000, ...(statuses && { statuses }) })).map((r): [string, StatusRow] => [
        r.host,
        r,
      ]),
    );

  it("takes metrics as a server's only when they name its host and node key", async () => {
    const r = await rows();
    assert.deepEqual(
      [...r.values()].map((row) => [row.host, row.verdict]),
      [
        ["web-1", "converged"],
        ["web-2", "unknown"],
        ["web-3", "unknown"],
        ["web-4", "pending"],
      ],
    );
    assert.equal(
      r.get("web-2")!.error,
      `metrics at ${exposer.origin}/web-1/metrics belong to web-1/${keyId("web-1")}, not web-2/${keyId("web-2")}`,
    );
    assert.equal(r.get("web-2")!.reported_id, null);
    assert.match(r.get("web-3")!.error!, new RegExp(`belong to web-3/[0-9a-f]{16}, not web-3/${keyId("web-3")}$`));
  });

  it("reads the store's status records: a rejection of the expected id is `failed`, not `pending` forever", async () => {
    const r = await rows(async () => [signed(status({}))]);
    assert.equal(r.get("web-4")!.verdict, "failed");
    assert.equal(r.get("web-4")!.status_refused, null);
    assert.match(r.get("web-4")!.why, new RegExp(`agent rejected id ${ID}: wrong_target`));
    assert.equal(r.get("web-1")!.verdict, "converged");
  });

  it("goes on without a store that does not answer within STORE_READ_MS, noting it where it could matter", async () => {
    const started = Date.now();
    const r = await rows(() => new Promise(() => {}));
    const took = Date.now() - started;
    assert.ok(took >= STORE_READ_MS - 50 && took < STORE_READ_MS + 1500, `took ${took} ms`);
    assert.equal(r.get("web-4")!.verdict, "pending");
    assert.equal(r.get("web-4")!.error, `store status not read: no answer within ${STORE_READ_MS / 1000} s`);
    assert.equal(r.get("web-1")!.error, null);
    assert.match(r.get("web-2")!.error!, /^metrics at .* belong to web-1/);

    const failing = await rows(async () => {
      throw new FleetplanError("store_unavailable", "NATS at nats://127.0.0.1:1: ECONNREFUSED");
    });
    assert.equal(failing.get("web-4")!.error, "store status not read: NATS at nats://127.0.0.1:1: ECONNREFUSED");
  });
});

describe("storeStatuses", { timeout: 30_000 }, () => {
  it("reads every status record from a real NATS store, and fails fast when the store is down", async () => {
    const nats = await startNats();
    try {
      await initStoreLayout(nats.url);
      const nc = await connect({ servers: nats.url });
      const kv = await new Kvm(nc).open(STORE_DEFAULTS.statusBucket);
      const record = signed(status({}));
      await kv.put("web-4", record.value);
      await nc.close();
      const read = await storeStatuses(normalizeStoreConfig({ url: nats.url }, []), silentLogger)();
      assert.deepEqual(
        read.map((r) => [r.key, Buffer.from(r.value).toString()]),
        [[record.key, Buffer.from(record.value).toString()]],
      );
    } finally {
      await nats.stop();
    }
  });

  it("makes one connection attempt to a store that hangs up, and fails fast", async () => {
    let connections = 0;
    const hangUp = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => hangUp.listen(0, "127.0.0.1", resolve));
    try {
      const url = `nats://127.0.0.1:${(hangUp.address() as AddressInfo).port}`;
      const started = Date.now();
      await assert.rejects(
        storeStatuses(normalizeStoreConfig({ url }, []), silentLogger)(),
        (e: unknown) => e instanceof FleetplanError && e.reason === "store_unavailable",
      );
      assert.ok(Date.now() - started < STORE_READ_MS, `took ${Date.now() - started} ms`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(connections, 1);
    } finally {
      await new Promise((resolve) => hangUp.close(resolve));
    }
  });
});
