// Faults and bad input through the real CLI: one target the store refuses does not stop the
// others; an unreachable store fails every target quickly; bad inventory input writes nothing;
// usage errors exit 2 with a stable JSON shape; `seal` output verifies with the agent's `inspect`.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { PushSummary } from "../../coordinator/push.ts";
import { AGENT_BIN, createCli, initWithServers, jsonLines, lastJson, runCli } from "../helpers/cli.ts";
import { createNode, createWorld } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { openPlanBucket } from "../helpers/kv.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";

interface ErrorJson {
  ok: false;
  reason: string;
  message: string;
}

describe("faults and bad input through the CLI", { timeout: 60_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Node[];

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-faults-");
    // Keys, configs and metrics ports only: no agent runs, nothing here waits for one.
    nodes = await Promise.all(["edge-1", "edge-2", "edge-3"].map((h) => createNode(world, h, nats.url)));
  });
  after(async () => {
    await nats?.stop();
    world?.cleanup();
  });

  it("an envelope above the NATS max_payload fails only its host (value_too_large); the others are pushed", async () => {
    const cli = createCli(world, nats.url, "coord-payload");
    await initWithServers(cli, nodes);
    const plans = join(world.dir, "payload-plans");
    mkdirSync(plans);
    writeFileSync(join(plans, "edge-1.sh"), "echo small\n");
    // Random data stays larger than the default 1 MiB max_payload after zstd.
    writeFileSync(
      join(plans, "edge-2.sh"),
      `#!/bin/sh\n${randomBytes(1536 * 1024)
        .toString("base64")
        .replace(/.{76}/g, "# $&\n")}\ntrue\n`,
    );
    writeFileSync(join(plans, "edge-3.sh"), "echo small\n");

    const result = await cli.run(["push", "--plans", plans, "--all", "--json"]);
    assert.equal(result.code, 1, result.stderr);
    const summary = lastJson<PushSummary>(result);
    assert.deepEqual(
      summary.targets.map((t) => [t.host, t.outcome, t.reason]),
      [
        ["edge-1", "pushed", null],
        ["edge-2", "put_failed", "value_too_large"],
        ["edge-3", "pushed", null],
      ],
    );
    assert.match(summary.targets[1]!.message!, /max_payload/);
    const bucket = await openPlanBucket(nats.url);
    try {
      const revisions = await bucket.revisions(nodes.map((n) => n.host));
      assert.equal(revisions["edge-2"], null);
      assert.ok(typeof revisions["edge-1"] === "number" && typeof revisions["edge-3"] === "number", JSON.stringify(revisions));
    } finally {
      await bucket.close();
    }
    const history = lastJson<{ host: string; outcome: string; reason: string | null }[]>(await cli.expect(["history", "edge-2", "--json"]));
    assert.deepEqual(
      history.map((h) => [h.host, h.outcome, h.reason]),
      [["edge-2", "put_failed", "value_too_large"]],
    );

    // Only delivered envelopes are expected: edge-2 never got one, so it is still "new", not "not_converged".
    const db = openCoordinatorDb(cli.dbPath);
    try {
      assert.deepEqual([...db.expected().keys()], ["edge-1", "edge-3"]);
    } finally {
      db.close();
    }
    const dry = lastJson<PushSummary>(await cli.expect(["push", "--plans", plans, "--all", "--dry-run", "--json"]));
    assert.deepEqual(
      dry.targets.map((t) => [t.host, t.decision]),
      [
        ["edge-1", "not_converged"],
        ["edge-2", "new"],
        ["edge-3", "not_converged"],
      ],
    );

    // Text output says why: on the summary line and on the progress line.
    const text = await cli.run(["push", "--plans", plans, "--all"]);
    assert.equal(text.code, 1, text.stderr);
    const why = /\(value_too_large: envelope for edge-2 is \d+ bytes; the NATS server's max_payload is \d+ bytes/;
    assert.match(text.stdout.split("\n").find((l) => l.startsWith("edge-2 ")) ?? "", why);
    assert.match(text.stderr.split("\n").find((l) => l.startsWith("edge-2: put_failed")) ?? "", why);
  });

  it("a store on a closed port fails every target with store_unavailable, quickly", async () => {
    const cli = createCli(world, `nats://127.0.0.1:${await freePort()}`, "coord-closed");
    await initWithServers(cli, nodes);
    const plan = join(world.dir, "closed.sh");
    writeFileSync(plan, "echo hi\n");

    const result = await cli.run(["push", "--plan", plan, "--all", "--json", "--wait", "--timeout", "20s"], { timeoutMs: 30_000 });
    assert.equal(result.timedOut, false);
    assert.ok(result.ms < 20_000, `push took ${result.ms} ms`);
    assert.equal(result.code, 4, `exit 4: store unreachable\n${result.stderr}`);
    const summary = lastJson<PushSummary>(result);
    assert.deepEqual(
      summary.targets.map((t) => [t.host, t.outcome, t.reason]),
      nodes.map((n) => [n.host, "put_failed", "store_unavailable"]),
    );
    assert.deepEqual(
      jsonLines(result.stdout)
        .filter((e) => e.event === "put_failed")
        .map((e) => e.host)
        .sort(),
      nodes.map((n) => n.host),
    );
  });

  it("an empty --servers or --group, a too short --expires or a stray argument is refused (exit 2); nothing is pushed", async () => {
    const cli = createCli(world, nats.url, "coord-usage");
    await initWithServers(cli, nodes);
    const plan = join(world.dir, "usage.sh");
    writeFileSync(plan, "echo hi\n");
    const refused = async (args: string[], message: RegExp) => {
      const result = await cli.run(["push", "--plan", plan, "--json", ...args]);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
      const error = lastJson<ErrorJson>(result);
      assert.equal(error.reason, "invalid_argument");
      assert.match(error.message, message);
    };
    await refused(["--servers", ""], /^--servers: no host names given$/);
    await refused(["--servers", " , "], /^--servers: no host names given$/);
    await refused(["--group", ""], /^--group: no group name given$/);
    await refused(["--all", "--expires", "30s"], /^--expires: 30s is below the minimum of 1m$/);
    await refused(["--all", "extra"], /no positional arguments, got "extra"/);
    const history = lastJson<unknown[]>(await cli.expect(["history", "--json"]));
    assert.deepEqual(history, []);
  });

  it("server import with bad rows exits 2, names every problem and writes nothing", async () => {
    const cli = createCli(world, nats.url, "coord-import");
    await cli.expect(["init", "--json"]);
    const csv = join(world.dir, "inventory.csv");
    writeFileSync(
      csv,
      [
        "host,node_key,metrics",
        `good-1,${nodes[0]!.nodePubPath},127.0.0.1:9100`,
        `bad-key,${join(world.dir, "no-such.pub")},127.0.0.1:9101`,
        `bad-url,${nodes[1]!.nodePubPath},ftp://127.0.0.1/metrics`,
        `good-1,${nodes[2]!.nodePubPath},127.0.0.1:9102`,
      ].join("\n"),
    );

    const result = await cli.run(["server", "import", csv, "--json"]);
    assert.equal(result.code, 2);
    const error = lastJson<ErrorJson>(result);
    assert.equal(error.ok, false);
    assert.equal(error.reason, "invalid_argument");
    assert.match(error.message, /3 problem\(s\), nothing written/);
    assert.match(error.message, /inventory\.csv:3: node_key/);
    assert.match(error.message, /inventory\.csv:4: metrics: scheme must be http or https/);
    assert.match(error.message, /inventory\.csv:5: host good-1 already appears at .*inventory\.csv:2/);
    assert.deepEqual(lastJson<unknown[]>(await cli.expect(["server", "list", "--json"])), []);
  });

  it("server add of a host already in the inventory exits 2 and leaves it unchanged", async () => {
    const cli = createCli(world, nats.url, "coord-add");
    await cli.expect(["init", "--json"]);
    await cli.expect(["server", "add", "edge-1", "--node-key", nodes[0]!.nodePubPath, "--json"]);
    const before = await cli.expect(["server", "list", "--json"]);

    const again = await cli.run(["server", "add", "edge-1", "--node-key", nodes[1]!.nodePubPath, "--metrics", "127.0.0.1:9100", "--json"]);
    assert.equal(again.code, 2);
    assert.equal(lastJson<ErrorJson>(again).reason, "conflict");
    assert.match(lastJson<ErrorJson>(again).message, /edge-1/);
    const list = await cli.expect(["server", "list", "--json"]);
    assert.equal(list.stdout, before.stdout);
    assert.equal(lastJson<{ node_key_id: string }[]>(list)[0]!.node_key_id, nodes[0]!.keys.keyId);
  });

  it("CLI basics: --help, unknown commands, the JSON error shape", async () => {
    const cli = createCli(world, nats.url, "coord-basics");
    const help = await cli.run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage:/m);
    assert.match(help.stdout, /fleetplan push/);

    mkdirSync(dirname(cli.dbPath), { recursive: true });
    const unknown = await cli.run(["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    assert.equal(existsSync(cli.dbPath), false, "an unknown command must not create the database");

    const unknownJson = await cli.run(["frobnicate", "--json"]);
    assert.equal(unknownJson.code, 2);
    assert.deepEqual(Object.keys(lastJson(unknownJson)), ["ok", "reason", "message"]);
    assert.deepEqual({ ...lastJson<ErrorJson>(unknownJson), message: "" }, { ok: false, reason: "invalid_argument", message: "" });

    const badFlag = await cli.run(["push", "--bogus", "--json"]);
    assert.equal(badFlag.code, 2);
    assert.equal(lastJson<ErrorJson>(badFlag).reason, "invalid_argument");
    assert.match(lastJson<ErrorJson>(badFlag).message, /--bogus/);
    assert.equal(badFlag.stderr, "");
  });

  it("seal writes an envelope that fleetplan-agent inspect verifies against the trust file, and only that one", async () => {
    const cli = createCli(world, nats.url, "coord-seal");
    const plan = join(world.dir, "seal.sh");
    const out = join(world.dir, "edge-1.envelope");
    writeFileSync(plan, "echo sealed\n");
    const sealed = lastJson<{ ok: true; id: number; target: string; plan_hash: string }>(
      await cli.expect([
        "seal",
        "--plan",
        plan,
        "--target",
        "edge-1",
        "--node-key",
        nodes[0]!.nodePubPath,
        "--id",
        "20250101000000",
        "--out",
        out,
        "--json",
      ]),
    );
    assert.equal(sealed.id, 20250101000000);

    const inspect = (trust: string, extra: string[] = []) =>
      runCli(["inspect", out, "--trust", trust, "--json", ...extra], { bin: AGENT_BIN });
    const verified = await inspect(world.trustPath, ["--key", nodes[0]!.nodeKeyPath]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const report = lastJson<{
      ok: boolean;
      header: { id: number; target: string; plan_hash: string };
      verified_signers: string[];
      verification: string;
    }>(verified);
    assert.equal(report.ok, true);
    assert.deepEqual([report.header.id, report.header.target, report.header.plan_hash], [20250101000000, "edge-1", sealed.plan_hash]);
    assert.deepEqual(report.verified_signers, [world.admin.keyId]);
    assert.match(report.verification, /signatures verified, decrypted/);

    // Against another admin's trust file the same envelope is refused.
    const other = await createWorld("fleetplan-e2e-other-");
    try {
      const refused = await inspect(other.trustPath);
      assert.equal(refused.code, 3);
      assert.equal(lastJson<{ ok: boolean }>(refused).ok, false);
    } finally {
      other.cleanup();
    }
  });
});
