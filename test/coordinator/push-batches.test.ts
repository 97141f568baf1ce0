// Push at the speed of its primitives: ids reserved a batch at a time (and never reused, even by a
// push killed with -9), a transaction per batch recording every outcome, sealing on worker threads.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { keepNewer } from "../../coordinator/decide.ts";
import { planBinder } from "../../coordinator/plan-binder.ts";
import { bindPlan, planSaltKey } from "../../coordinator/plan-salt.ts";
import { createSealPool } from "../../coordinator/seal-pool.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { openEnvelope, parseEnvelope } from "../../shared/envelope.ts";
import { EnvelopeError, FleetplanError } from "../../shared/errors.ts";
import { silentLogger } from "../../shared/log.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import { planFromScript, sealEnvelope, sodiumReady } from "../../shared/mod.ts";
import type { Plan } from "../../shared/types.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { initStoreLayout, testStoreConfig } from "../helpers/store-layout.ts";
import { admin, inventory, nodeKeyOf, openCoordinatorDb, pushAll } from "./push-batches-fixture.ts";

const NOW = new Date("2026-06-01T12:00:00Z");
const T0 = 20260601120000;
const PLAN: Plan = planFromScript("systemctl reload app\n");
const trustOf = () => ({ keys: new Map([[admin().keyId, admin().publicKey]]), threshold: 1 });

/** PLAN sealed for host i with `id`, as push would seal it. */
const sealFor = (i: number, id: number) =>
  sealEnvelope(bindPlan(PLAN, planSaltKey(admin()), `host-${i}`).bytes, {
    id,
    target: `host-${i}`,
    nodePublicKey: nodeKeyOf(i).publicKey,
    signers: [admin()],
    issued: NOW.getTime(),
    expires: NOW.getTime() + 3_600_000,
  });

/** Open `bytes` as host i's agent would, with nothing accepted before. */
const openAs = (bytes: Uint8Array, host: string, i: number, now = NOW.getTime()) =>
  openEnvelope(bytes, { hostname: host, nodeKeys: nodeKeyOf(i), trust: trustOf(), highWaterMark: { id: 0, planHash: null }, now });

let tmp: string;
before(async () => {
  await sodiumReady();
  tmp = mkdtempSync(join(tmpdir(), "fleetplan-push-batches-"));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("plan binder", () => {
  it("gives exactly bindPlan's bytes and hash, serialising the plan once", () => {
    const key = planSaltKey(admin());
    const bind = planBinder(PLAN, key);
    for (const host of ["host-0", "web-1.example.org", "a", "x".repeat(200)]) {
      const want = bindPlan(PLAN, key, host);
      const got = bind(host);
      assert.deepEqual(Buffer.from(got.bytes), Buffer.from(want.bytes), host);
      assert.equal(got.hash, want.hash);
    }
  });
});

describe("seal pool", { timeout: 60_000 }, () => {
  it("seals on worker threads envelopes that each host's agent opens, and no other host's; a bad key fails alone", async () => {
    const rows = inventory(40);
    const bind = planBinder(PLAN, planSaltKey(admin()));
    const items = rows.map((r, i) => ({ bytes: bind(r.host).bytes, id: T0 + i, target: r.host, nodeKey: r.nodeKey }));
    items.splice(7, 0, { bytes: bind("broken").bytes, id: T0, target: "broken", nodeKey: "fleetplan-node not-a-key x" });
    const pool = createSealPool([admin()], 2);
    try {
      await pool.started; // every chunk goes to a worker, none is sealed on this thread
      const out = await pool.seal(items, { issued: NOW.getTime(), expires: NOW.getTime() + 3_600_000 });
      assert.equal(out.length, items.length);
      const broken = out.splice(7, 1)[0]!;
      assert.ok(!(broken instanceof Uint8Array) && broken.reason !== "internal", JSON.stringify(broken));
      out.forEach((envelope, i) => {
        assert.ok(envelope instanceof Uint8Array);
        const opened = openAs(envelope, `host-${i}`, i);
        assert.equal(opened.header.id, T0 + i);
        assert.equal(opened.header.plan_hash, bind(`host-${i}`).hash);
        assert.deepEqual(opened.plan.steps, PLAN.steps);
      });
      assert.throws(
        () => openAs(out[1] as Uint8Array, "host-0", 0),
        (e) => e instanceof EnvelopeError && e.reason === "wrong_target",
      );
    } finally {
      await pool.close();
    }
  });
});

describe("reserveIds", () => {
  it("reserves the next id of every host in one transaction, above issueId's, and names every unknown host", () => {
    const db = openCoordinatorDb(join(tmp, "reserve.db"));
    try {
      db.addServers(inventory(3));
      const single = db.issueId("host-1", NOW);
      const ids = db.reserveIds(["host-0", "host-1", "host-2"], NOW);
      assert.deepEqual(
        [...ids],
        [
          ["host-0", T0],
          ["host-1", single + 1],
          ["host-2", T0],
        ],
      );
      const unknown = (e: unknown) => e instanceof FleetplanError && e.reason === "not_found" && /nope, gone/.test(e.message);
      assert.throws(() => db.reserveIds(["host-0", "nope", "gone"], NOW), unknown);
      assert.equal(db.lastIssuedId("host-0"), T0, "a refused batch reserves nothing");
    } finally {
      db.close();
    }
  });
});

describe("push in batches, against a real nats-server", { timeout: 120_000 }, () => {
  // A server per test: each starts from an empty store.
  let nats: NatsServer;
  beforeEach(async () => {
    nats = await startNats();
    await initStoreLayout(nats.url);
  });
  afterEach(async () => nats?.stop());

  /** The envelope stored under each of `hosts`, or undefined. */
  const stored = async (hosts: string[]): Promise<Map<string, Uint8Array>> => {
    const config = testStoreConfig(nats.url);
    const nc = await connect(natsConnectOptions(config, { name: "test-read", forever: false }));
    try {
      const kv = await new Kvm(nc).open(config.planBucket);
      const out = new Map<string, Uint8Array>();
      await Promise.all(
        hosts.map(async (h) => {
          const e = await kv.get(h);
          if (e?.operation === "PUT") out.set(h, e.value);
        }),
      );
      return out;
    } finally {
      await nc.close();
    }
  };

  it("records every outcome across batch edges, moves the expected state only for delivered envelopes, seals on workers", async () => {
    const db = openCoordinatorDb(join(tmp, "batches.db"));
    try {
      const rows = inventory(11);
      rows[5] = { ...rows[5]!, nodeKey: "fleetplan-node not-a-key x" };
      db.addServers(rows);
      // host-2's key already holds a newer envelope of ours (another coordinator): that put must end superseded.
      const store = await createNatsStore(testStoreConfig(nats.url), { logger: silentLogger });
      await store.put("host-2", sealFor(2, T0 + 1000));
      await store.close();

      const summary = await pushAll(db, nats.url, NOW, { tuning: { batchSize: 3, poolMinTargets: 1 } });
      assert.deepEqual(summary.counts, { pushed: 9, superseded: 1, put_failed: 1 });
      const history = db.history();
      assert.equal(history.length, 11, "one row per target");
      assert.deepEqual(new Set(history.map((h) => h.host)), new Set(rows.map((r) => r.host)));
      const byHost = new Map(history.map((h) => [h.host, h]));
      assert.equal(byHost.get("host-2")!.outcome, "superseded");
      assert.equal(byHost.get("host-5")!.outcome, "put_failed");
      assert.match(byHost.get("host-5")!.message!, /key/);
      const expected = db.expected();
      assert.deepEqual(
        [...expected.keys()].sort(),
        rows
          .map((r) => r.host)
          .filter((h) => h !== "host-2" && h !== "host-5")
          .sort(),
      );
      const envelopes = await stored(rows.map((r) => r.host));
      for (const [host, envelope] of envelopes) {
        const i = Number(host.slice(5));
        if (host === "host-2") assert.equal(parseEnvelope(envelope).header.id, T0 + 1000);
        else assert.equal(openAs(envelope, host, i).header.id, expected.get(host)!.id);
      }
    } finally {
      db.close();
    }
  });

  it("asks only the hosts last delivered this very plan whether they converged; a new plan or --force asks none", async () => {
    const db = openCoordinatorDb(join(tmp, "candidates.db"));
    try {
      db.addServers(inventory(4));
      const asked: string[][] = [];
      const converged = async (servers: { host: string }[]) => {
        asked.push(servers.map((s) => s.host));
        return new Set(["host-1"]);
      };
      await pushAll(db, nats.url, NOW, { script: "echo a\n", converged });
      assert.deepEqual(asked, [], "nothing delivered yet: no host can be skipped");
      // host-3 gets another plan, so only host-0..2 were last delivered "echo a".
      await pushAll(db, nats.url, new Date(NOW.getTime() + 1000), { script: "echo a\n" });
      db.setExpected("host-3", db.expected().get("host-3")!.id + 1, "f".repeat(64), NOW.getTime());
      const again = await pushAll(db, nats.url, new Date(NOW.getTime() + 2000), { script: "echo a\n", converged });
      assert.deepEqual(asked, [["host-0", "host-1", "host-2"]]);
      assert.deepEqual(
        again.targets.map((t) => [t.host, t.decision]),
        [
          ["host-0", "not_converged"],
          ["host-1", "converged"],
          ["host-2", "not_converged"],
          ["host-3", "changed"],
        ],
      );
      await pushAll(db, nats.url, new Date(NOW.getTime() + 3000), { script: "echo b\n", converged });
      await pushAll(db, nats.url, new Date(NOW.getTime() + 4000), { script: "echo b\n", converged, force: true });
      assert.equal(asked.length, 1, "a changed plan and --force ask no agent");
    } finally {
      db.close();
    }
  });

  it("a put retried after its answer was lost finds its own bytes in the store: delivered, not superseded", async () => {
    const store = await createNatsStore(testStoreConfig(nats.url), { logger: silentLogger });
    try {
      const bytes = sealFor(0, T0);
      const keep = (current: Uint8Array) => keepNewer(current, { host: "host-0", id: T0 }, trustOf());
      const base = await store.put("host-0", sealFor(0, T0 - 1));
      const { revision } = await store.put("host-0", bytes, keep, { epoch: base.epoch!, revision: base.revision });
      assert.equal((await store.put("host-0", bytes, keep)).revision, revision);
      assert.equal(
        (await store.put("host-0", bytes, keep, { epoch: base.epoch!, revision: base.revision })).revision,
        revision,
        "retried on its base",
      );
      // The same id sealed again (other bytes): a second push of this id would be superseded, as before.
      await assert.rejects(store.put("host-0", sealFor(0, T0), keep), (e) => e instanceof FleetplanError && e.reason === "superseded");
    } finally {
      await store.close();
    }
  });

  it("a push killed with -9 mid-way: every id it let out was reserved, the next push's ids are above all of them", async () => {
    const hosts = 2500;
    const dbPath = join(tmp, "killed.db");
    const db = openCoordinatorDb(dbPath);
    db.addServers(inventory(hosts));
    db.close();
    const args = ["--import", "tsx", join(import.meta.dirname, "push-kill-child.ts"), dbPath, nats.url, String(NOW.getTime())];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    let puts = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      assert.notEqual(line, "done", "the push finished before it could be killed: raise `hosts`");
      if (line.startsWith("put ") && ++puts === 600) break;
    }
    child.kill("SIGKILL");
    await exited;

    const names = Array.from({ length: hosts }, (_, i) => `host-${i}`);
    const first = new Map([...(await stored(names))].map(([h, e]) => [h, parseEnvelope(e).header.id]));
    assert.ok(first.size >= 600 && first.size < hosts, `${first.size} envelopes stored`);
    const again = openCoordinatorDb(dbPath);
    try {
      for (const [host, id] of first) assert.ok(again.lastIssuedId(host)! >= id, `${host}: id ${id} reached the store unreserved`);
      assert.ok(again.history().length >= 256, "the batches finished before the kill are in history");
      const summary = await pushAll(again, nats.url, NOW, { force: true });
      assert.equal(summary.counts.pushed, hosts);
      for (const t of summary.targets) {
        const before = first.get(t.host);
        if (before !== undefined) assert.ok(t.id! > before, `${t.host}: id ${t.id} not above ${before} of the killed push`);
      }
    } finally {
      again.close();
    }
  });
});
