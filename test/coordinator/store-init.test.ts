// `fleetplan store init` and the NATS store layout: creates both buckets with republish, direct get
// and a consumer cap, is idempotent, updates an old bucket keeping its values, and `push` refuses
// an outdated bucket. Pure layout checks first, then a real nats-server.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { main } from "../../coordinator/cli/main.ts";
import { layoutDrift, MAX_CONSUMERS, storeLayout } from "../../coordinator/store/nats-layout.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { ENROLL_BUCKET, MAX_ENROLLMENT_BYTES } from "../../shared/enrollment.ts";
import type { FleetplanError } from "../../shared/errors.ts";
import { silentLogger } from "../../shared/log.ts";
import { kvStream } from "../../shared/store-layout.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { testStoreConfig } from "../helpers/store-layout.ts";

const run = async (args: string[]) => {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
};

describe("store layout (pure)", () => {
  const config = testStoreConfig("nats://127.0.0.1:4222");
  const [plans, status] = storeLayout(config);

  it("the plan bucket republishes headers of every key to the notify prefix; both allow direct get and cap consumers", () => {
    assert.deepEqual(plans!.fields, {
      allow_direct: true,
      max_consumers: MAX_CONSUMERS,
      republish: { src: "$KV.fleetplan-plans.>", dest: "fleetplan.notify.>", headers_only: true },
    });
    assert.deepEqual(status!.fields, { allow_direct: true, max_consumers: MAX_CONSUMERS });
  });

  it("layoutDrift names each outdated setting, and nothing for a current stream", () => {
    assert.deepEqual(layoutDrift({ ...plans!.fields }, plans!.fields), []);
    assert.deepEqual(layoutDrift({ allow_direct: false, max_consumers: -1 }, plans!.fields), [
      "direct get is off",
      `max_consumers is unlimited, not ${MAX_CONSUMERS}`,
      "no republish to fleetplan.notify.>",
    ]);
    const elsewhere = { ...plans!.fields, republish: { src: "$KV.fleetplan-plans.>", dest: "old.>" } };
    assert.match(layoutDrift(elsewhere, plans!.fields)[0]!, /old\.>/);
  });
});

describe("fleetplan store init against a real nats-server", { timeout: 60_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
  });

  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it("creates both buckets with the layout, and a second run finds them current", { timeout: 20_000 }, async () => {
    const first = await run(["store", "init", "--store", nats.url, "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const buckets = JSON.parse(first.stdout).buckets.map((b: { bucket: string; action: string }) => [b.bucket, b.action]) as string[][];
    assert.deepEqual(
      buckets.filter(([b]) => b !== ENROLL_BUCKET),
      [
        ["fleetplan-plans", "created"],
        ["fleetplan-status", "created"],
        ["fleetplan-logs", "created"],
      ],
    );
    // The enrollment bucket comes last, from store init only; capped values, no rollup (a put cannot purge the others).
    assert.deepEqual(buckets.at(-1), [ENROLL_BUCKET, "created"]);
    const enroll = (await jsm.streams.info(kvStream(ENROLL_BUCKET))).config;
    assert.deepEqual([enroll.max_msg_size, enroll.allow_rollup_hdrs, enroll.max_msgs_per_subject], [2 * MAX_ENROLLMENT_BYTES, false, 1]);
    const plans = (await jsm.streams.info(kvStream("fleetplan-plans"))).config;
    assert.deepEqual(plans.republish, { src: "$KV.fleetplan-plans.>", dest: "fleetplan.notify.>", headers_only: true });
    assert.equal(plans.allow_direct, true);
    assert.equal(plans.max_consumers, MAX_CONSUMERS);
    assert.equal(plans.max_msgs_per_subject, 5);
    const status = (await jsm.streams.info(kvStream("fleetplan-status"))).config;
    assert.equal(status.max_consumers, MAX_CONSUMERS);
    assert.equal(status.max_msgs_per_subject, 1);
    assert.equal(status.republish, undefined);
    // Sealed output of failed runs: the last 5 per host (`fleetplan logs HOST --id N`).
    const logs = (await jsm.streams.info(kvStream("fleetplan-logs"))).config;
    assert.deepEqual([logs.max_msgs_per_subject, logs.allow_direct, logs.republish], [5, true, undefined]);

    const again = await run(["store", "init", "--store", nats.url]);
    assert.equal(again.code, 0, again.stderr);
    const lines = again.stdout.split("\n");
    assert.ok(lines.includes(`${ENROLL_BUCKET} (stream KV_${ENROLL_BUCKET}): current`), again.stdout);
    assert.equal(
      lines.filter((l) => !l.startsWith(ENROLL_BUCKET)).join("\n"),
      [
        "fleetplan-plans (stream KV_fleetplan-plans): current",
        "fleetplan-status (stream KV_fleetplan-status): current",
        "fleetplan-logs (stream KV_fleetplan-logs): current",
        "",
      ].join("\n"),
    );
  });

  it("--notify-prefix moves the notices (as agents' storeOptions.notifyPrefix); a bad prefix is a usage error", {
    timeout: 20_000,
  }, async () => {
    const custom = await run(["store", "init", "--store", nats.url, "--notify-prefix", "ops.fleet.notify", "--json"]);
    assert.equal(custom.code, 0, custom.stderr);
    assert.equal((await jsm.streams.info(kvStream("fleetplan-plans"))).config.republish?.dest, "ops.fleet.notify.>");
    const bad = await run(["store", "init", "--store", nats.url, "--notify-prefix", "ops.>"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /notify prefix: "ops\.>" must be dot-separated tokens/);
    assert.equal((await run(["store", "init", "--store", nats.url])).code, 0, "back to the default");
    assert.equal((await jsm.streams.info(kvStream("fleetplan-plans"))).config.republish?.dest, "fleetplan.notify.>");
  });

  it("an old bucket (Kvm.create: no republish, no cap) makes push refuse; store init updates it, keeping its values", {
    timeout: 30_000,
  }, async () => {
    await jsm.streams.delete(kvStream("fleetplan-plans"));
    const old = await new Kvm(nc).create("fleetplan-plans", { history: 5 });
    await old.put("web-1", new TextEncoder().encode("envelope 1"));
    await old.put("db.eu-1", new TextEncoder().encode("envelope 2"));
    await old.put("gone-1", new TextEncoder().encode("x"));
    await old.delete("gone-1");

    const config = testStoreConfig(nats.url);
    await assert.rejects(
      createNatsStore(config, { logger: silentLogger, attempts: 1 }),
      (e: FleetplanError) =>
        e.reason === "store_layout_outdated" &&
        /no republish to fleetplan\.notify\.>/.test(e.message) &&
        /fleetplan store init/.test(e.message),
    );

    const r = await run(["store", "init", "--store", nats.url, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const [plans] = JSON.parse(r.stdout).buckets;
    // nats-server 2.9 cannot add republish or max_consumers in place: the bucket is recreated.
    assert.ok(["updated", "recreated"].includes(plans.action), plans.action);
    assert.ok(plans.drift.includes("no republish to fleetplan.notify.>"));
    const kv = await new Kvm(nc).open("fleetplan-plans");
    assert.equal(new TextDecoder().decode((await kv.get("web-1"))!.value), "envelope 1");
    assert.equal(new TextDecoder().decode((await kv.get("db.eu-1"))!.value), "envelope 2");
    assert.equal(await kv.get("gone-1"), null);
    const store = await createNatsStore(config, { logger: silentLogger, attempts: 1 });
    await store.close();
  });

  it("push creates missing buckets with the same full layout", { timeout: 20_000 }, async () => {
    for (const b of ["fleetplan-plans", "fleetplan-status"]) await jsm.streams.delete(kvStream(b));
    const store = await createNatsStore(testStoreConfig(nats.url), { logger: silentLogger, attempts: 1 });
    await store.close();
    assert.deepEqual((await jsm.streams.info(kvStream("fleetplan-plans"))).config.republish?.dest, "fleetplan.notify.>");
    assert.equal((await jsm.streams.info(kvStream("fleetplan-status"))).config.max_consumers, MAX_CONSUMERS);
  });

  it("refuses a Consul store, an unknown subcommand, extra arguments (exit 2); an unreachable server exits 4", {
    timeout: 20_000,
  }, async () => {
    const consul = await run(["store", "init", "--store", "consul://127.0.0.1:8500", "--json"]);
    assert.equal(consul.code, 2);
    assert.match(JSON.parse(consul.stdout).message, /needs no setup/);
    const unknown = await run(["store", "frobnicate", "--store", nats.url]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown store command "frobnicate": init, credentials \(see fleetplan store --help\)/);
    const extra = await run(["store", "init", "now", "--store", nats.url]);
    assert.equal(extra.code, 2);
    const flag = await run(["store", "init", "--all", "--store", nats.url]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /store init does not take --all/);
    const down = await run(["store", "init", "--store", "nats://127.0.0.1:1", "--json"]);
    assert.equal(down.code, 4);
    assert.equal(JSON.parse(down.stdout).reason, "store_unavailable");
  });
});
