// Attacks and failure modes found in review, one test each, asserting the outcome and that
// nothing else changed: one envelope runner per ledger, expired redeliveries stay benign,
// unsigned floods leave no ledger rows, stop() accepts nothing, recreated buckets are followed.
import assert from "node:assert/strict";
import { chownSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { execa } from "execa";
import Database from "better-sqlite3";
import { createAgent } from "../../agent/agent.ts";
import { normalizeAgentConfig } from "../../agent/config.ts";
import { openEnvelope } from "../../shared/envelope.ts";
import { EnvelopeError, FleetplanError } from "../../shared/errors.ts";
import { loadNodeKey } from "../../shared/key-files.ts";
import { KeyType, parseKey } from "../../shared/keys.ts";
import { silentLogger } from "../../shared/log.ts";
import { AGENT_BIN, createNode, createWorld, sealFor, startAgentProcess, startInProcess, waitFor } from "../helpers/fleet.ts";
import type { World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import { initStoreLayout } from "../helpers/store-layout.ts";
import type { NatsServer } from "../helpers/nats.ts";

let world: World;
let nats: NatsServer;
before(async () => {
  world = await createWorld();
  nats = await startNats();
});
after(async () => {
  await nats.stop();
  world.cleanup();
});

const rows = (stateDir: string, table: string): number => {
  const db = new Database(join(stateDir, "ledger.db"), { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe("one envelope runner per ledger", () => {
  test("apply refuses while the daemon owns the ledger, and works once it stopped", async () => {
    const node = await createNode(world, "own-1", nats.url);
    const daemon = await startAgentProcess(node);
    const envelope = join(world.dir, "own-1.fpe");
    writeFileSync(envelope, sealFor(world, node, 5, "true"));
    const refused = await execa("node", [AGENT_BIN, "apply", envelope, "--config", node.configPath, "--json"], { reject: false });
    assert.equal(refused.exitCode, 2, refused.stderr);
    assert.match(JSON.parse(refused.stdout).message, /in use by another fleetplan-agent \(pid \d+\)/);
    assert.equal(rows(node.config.stateDir, "runs"), 0, "nothing accepted or run by the refused apply");
    assert.equal(await daemon.stop(), 0);
    const applied = await execa("node", [AGENT_BIN, "apply", envelope, "--config", node.configPath, "--json"], { reject: false });
    assert.equal(applied.exitCode, 0, applied.stderr);
  });

  test("a claim left by a killed process is taken over", async () => {
    const node = await createNode(world, "own-2", nats.url);
    const daemon = await startAgentProcess(node);
    await daemon.kill9();
    const agent = await createAgent(node.config, { feed: null, logger: silentLogger });
    await agent.stop();
  });
});

test("the envelope already applied is a benign duplicate even after it expired", async () => {
  const node = await createNode(world, "exp-1", nats.url);
  const sealed = sealFor(world, node, 7, "true", { expires: Date.now() + 60_000 });
  const options = {
    hostname: node.host,
    nodeKeys: loadNodeKey(node.nodeKeyPath),
    trust: { keys: new Map([[world.admin.keyId, world.admin.publicKey]]), threshold: 1 },
  };
  const first = openEnvelope(sealed, { ...options, highWaterMark: { id: 0, planHash: null }, now: Date.now() });
  const later = { ...options, highWaterMark: { id: 7, planHash: first.header.plan_hash }, now: Date.now() + 86_400_000 };
  assert.throws(
    () => openEnvelope(sealed, later),
    (e: unknown) => e instanceof EnvelopeError && e.reason === "duplicate",
  );
  const older = sealFor(world, node, 6, "true", { expires: Date.now() + 60_000 });
  assert.throws(
    () => openEnvelope(older, later),
    (e: unknown) => e instanceof EnvelopeError && e.reason === "expired",
    "an older expired envelope is still expired",
  );
});

test("a flood of unsigned garbage is counted, not stored row by row, and logged once", async () => {
  const node = await createNode(world, "flood-1", nats.url, { metricsListen: "off" });
  const lines: string[] = [];
  const { createLogger } = await import("../../shared/log.ts");
  const agent = await createAgent(node.config, { feed: null, logger: createLogger({ write: (l) => lines.push(l) }) });
  try {
    for (let i = 0; i < 500; i++)
      assert.equal(agent.submit(new Uint8Array(64).fill(i & 0xff), { source: "test", revision: i }).accepted, false);
    const counts = agent.ledger.counts();
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      500,
      JSON.stringify(counts),
    );
    assert.equal(agent.ledger.envelopes(1000).length, 0, "no envelope rows for unsigned garbage");
    assert.equal(
      lines.filter((l) => l.includes('"envelope_rejected"')).length,
      Object.keys(counts).length,
      "one log line per reason per minute",
    );
  } finally {
    await agent.stop();
  }
});

test("an agent that is stopping accepts nothing and records nothing", async () => {
  const node = await createNode(world, "stop-1", nats.url, { metricsListen: "off" });
  const agent = await createAgent(node.config, { feed: null, logger: silentLogger });
  const stopped = agent.stop();
  const late = agent.submit(sealFor(world, node, 9, "true"), { source: "test", revision: null });
  await stopped;
  assert.equal(late.accepted, false);
  assert.equal(!late.accepted && late.reason, "stopping");
  assert.equal(rows(node.config.stateDir, "envelopes"), 0);
  await agent.idle();
});

test("a plan bucket recreated with lower revisions is followed, not ignored", { timeout: 40_000 }, async () => {
  const node = await createNode(world, "reset-1", nats.url, { metricsListen: "off" });
  const nc = await connect({ servers: nats.url });
  const kvm = new Kvm(nc);
  await initStoreLayout(nats.url);
  let kv = await kvm.open("fleetplan-plans");
  const agent = await startInProcess(node);
  try {
    for (let id = 1; id <= 3; id++) await kv.put(node.host, sealFor(world, node, id, "true"));
    await waitFor(() => agent.ledger.highWaterMark().id === 3, 10_000, "ids 1-3 accepted");
    await kv.destroy();
    await initStoreLayout(nats.url); // as `fleetplan store init` would recreate it
    kv = await kvm.open("fleetplan-plans");
    assert.equal(await kv.put(node.host, sealFor(world, node, 4, "true")), 1, "revisions start again at 1");
    await waitFor(() => agent.ledger.highWaterMark().id === 4, 25_000, "id 4 accepted after the bucket was recreated");
  } finally {
    await agent.stop();
    await nc.close();
  }
});

test("a key file with a bare secret never echoes it in the error", () => {
  const secret = Buffer.alloc(32, 7).toString("base64");
  assert.throws(
    () => parseKey(secret, KeyType.NodePrivate, "node.key"),
    (e: unknown) => e instanceof FleetplanError && e.reason === "bad_key" && !e.message.includes(secret.slice(0, 8)),
  );
});

test("a trust file owned by another user is refused", async () => {
  const node = await createNode(world, "owner-1", nats.url, { metricsListen: "off" });
  const trust = join(world.dir, "trust-owned");
  writeFileSync(trust, "", { mode: 0o644 });
  writeFileSync(trust, (await import("node:fs")).readFileSync(world.trustPath));
  chownSync(trust, 65534, 65534);
  const config = normalizeAgentConfig([{ ...JSON.parse((await import("node:fs")).readFileSync(node.configPath, "utf8")), trust }], {});
  await assert.rejects(
    createAgent(config, { feed: null, logger: silentLogger }),
    (e: unknown) => e instanceof FleetplanError && e.reason === "insecure_key_file" && /owned by uid 65534/.test(e.message),
  );
});

test("config refuses bounds that would disable checks", () => {
  assert.throws(
    () => normalizeAgentConfig([{ maxPlanBytes: 2 ** 40, clockSkew: "2h", stateDir: "/x", logDir: "/y", nodeKey: "/k", trust: "/t" }], {}),
    (e: unknown) => e instanceof FleetplanError && /maxPlanBytes/.test(e.message) && /clockSkew/.test(e.message),
  );
});
