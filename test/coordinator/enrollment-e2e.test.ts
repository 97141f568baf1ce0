// Enrollment against a real nats-server running the nats-server.conf of `store credentials`: a new
// node announces itself with the shared bootstrap credential, `server pending` shows it verified,
// `server accept` adds it, its own credentials are issued and it converges on a push. The bootstrap
// credential can only put announcements; a forged announcement is shown unverified and refused.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { connect, credsAuthenticator, Empty, headers } from "@nats-io/transport-node";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { PendingRow } from "../../coordinator/enrollment.ts";
import type { PushSummary } from "../../coordinator/push.ts";
import { ENROLL_BUCKET, ENROLL_INBOX_PREFIX, signAnnouncement } from "../../shared/enrollment.ts";
import type { Announcement } from "../../shared/enrollment.ts";
import { formatNodePublic, generateNodeKey } from "../../shared/keys.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import { defaultInboxPrefix, directGetSubject, kvSubject, notifySubject } from "../../shared/store-layout.ts";
import { AGENT_BIN, createCli, lastJson, runCli } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { freePort, waitListening } from "../helpers/ports.ts";

const PLANS = STORE_DEFAULTS.planBucket;
const STATUS = STORE_DEFAULTS.statusBucket;
const enc = (text: string) => new TextEncoder().encode(text);
const literal = (text: string) => text.replace(/[$.*>]/g, "\\$&");
const PUB_DENIED = (subject: string) => new RegExp(`Permissions Violation for Publish to "${literal(subject)}"`);

/** nats.js reports a refused subscription asynchronously, through the subscription's `closed`. */
const subscriptionError = async (sub: Subscription): Promise<string> => {
  const timer = new Promise<string>((resolve) => setTimeout(() => resolve("subscription still open after 3 s"), 3_000));
  return Promise.race([sub.closed.then((e) => (e instanceof Error ? e.message : "closed without error")), timer]);
};

describe("enrollment with the bootstrap credential", { timeout: 150_000 }, () => {
  let world: World;
  let nats: NatsServer;
  let node: Node;
  let cli: Fleetplan;
  let out: string;
  let bootstrap: NatsConnection;
  let agent: ReturnType<typeof spawn> | undefined;
  let agentLog = "";
  const creds = () => ["--creds", join(out, "coordinator.creds")];
  const pending = async (): Promise<PendingRow[]> => JSON.parse((await cli.expect(["server", "pending", "--json", ...creds()])).stdout);

  before(async () => {
    world = await createWorld("fleetplan-enroll-e2e-");
    out = join(world.dir, "creds");
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    node = await createNode(world, "host-new", url);
    cli = createCli(world, url);
    await cli.expect(["init", "--json"]);
    await cli.expect(["store", "credentials", "--out", out, "--json"]);
    nats = await startNats({ port, configFile: join(out, "nats-server.conf") });
    await cli.expect(["store", "init", "--json", ...creds()]);
    bootstrap = await connect({
      servers: url,
      authenticator: credsAuthenticator(readFileSync(join(out, "bootstrap.creds"))),
      timeout: 5_000,
      inboxPrefix: ENROLL_INBOX_PREFIX,
    });
  });

  after(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent!.once("exit", r));
      agent.kill("SIGTERM");
      await exited;
    }
    await bootstrap?.close();
    await nats?.stop();
    world?.cleanup();
  });

  it("the node enrolls with bootstrap.creds and shows in server pending, signature verified", async () => {
    const args = ["enroll", "--config", node.configPath, "--bootstrap-creds", join(out, "bootstrap.creds"), "--json"];
    const enrolled = await runCli(args, { bin: AGENT_BIN });
    assert.equal(enrolled.code, 0, enrolled.stdout + enrolled.stderr);
    const [row] = await pending();
    assert.equal(row?.host, "host-new");
    assert.equal(row?.verified, true);
    assert.equal(row?.state, "pending");
    assert.equal(row?.fingerprint, node.keys.keyId);
    assert.equal(typeof row?.facts?.kernel, "string");
    assert.equal(typeof row?.facts?.boot_time, "number");
  });

  it("an unaccepted host receives no plan: push refuses a host not in the inventory", async () => {
    const plan = join(world.dir, "plan.sh");
    writeFileSync(plan, "echo converged\n");
    const result = await cli.run(["push", "--plan", plan, "--servers", "host-new", "--json", ...creds()]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(result.stdout + result.stderr, /no server in the inventory matches host-new/);
    const read = await cli.run(["push", "--plan", plan, "--all", "--json", ...creds()]);
    assert.notEqual(read.code, 0, "an empty inventory pushes nothing");
  });

  it("a forged announcement (signed by another key) is shown not verified and accept refuses it", async () => {
    const victim = generateNodeKey();
    const forger = generateNodeKey();
    const announcement: Announcement = {
      host: "host-forged",
      node_key: formatNodePublic(victim.publicKey, victim.identity.publicKey),
      hostname: "x",
      version: "0",
      facts: { os: "x", kernel: "x", boot_time: 1, arch: "x" },
      issued: Date.now(),
    };
    await jetstream(bootstrap).publish(kvSubject(ENROLL_BUCKET, "host-forged"), signAnnouncement(announcement, forger.identity.privateKey));
    const row = (await pending()).find((r) => r.host === "host-forged");
    assert.equal(row?.verified, false);
    assert.match(row?.problem ?? "", /^bad_signature/);
    const accept = await cli.run(["server", "accept", "host-forged", "--json", ...creds()]);
    assert.equal(accept.code, 3, accept.stdout + accept.stderr);
    assert.match(accept.stdout, /"reason":"bad_signature"/);
    const list = JSON.parse((await cli.expect(["server", "list", "--json"])).stdout) as { host: string }[];
    assert.deepEqual(
      list.map((s) => s.host),
      [],
    );
    await cli.expect(["server", "reject", "host-forged", "--json", ...creds()]);
    assert.deepEqual(
      (await pending()).map((r) => r.host),
      ["host-new"],
    );
  });

  it("the bootstrap credential cannot read plans or status, write plan or status keys, or reach the JetStream API", async () => {
    const js = jetstream(bootstrap);
    for (const subject of [
      directGetSubject(PLANS, "host-a"),
      directGetSubject(STATUS, "host-a"),
      "$JS.API.INFO",
      `$JS.API.STREAM.INFO.KV_${ENROLL_BUCKET}`,
      `$JS.API.STREAM.PURGE.KV_${ENROLL_BUCKET}`,
      `$JS.API.CONSUMER.CREATE.KV_${PLANS}`,
    ]) {
      await assert.rejects(bootstrap.request(subject, Empty, { timeout: 5_000 }), PUB_DENIED(subject));
    }
    for (const subject of [kvSubject(PLANS, "host-a"), kvSubject(STATUS, "host-a"), kvSubject(PLANS, "host-new")]) {
      await assert.rejects(js.publish(subject, enc("forged"), { timeout: 5_000 }), PUB_DENIED(subject));
    }
    for (const subject of [
      ">",
      "_INBOX.>",
      `$KV.${PLANS}.>`,
      `$KV.${ENROLL_BUCKET}.>`,
      notifySubject(STORE_DEFAULTS, "host-a"),
      `${defaultInboxPrefix("host-a")}.>`,
    ]) {
      assert.match(
        await subscriptionError(bootstrap.subscribe(subject)),
        new RegExp(`Permissions Violation for Subscription to "${literal(subject)}"`),
      );
    }
    // A rollup put would purge every announcement: the bucket refuses rollup headers.
    const rollup = headers();
    rollup.set("Nats-Rollup", "all");
    await assert.rejects(js.publish(kvSubject(ENROLL_BUCKET, "host-x"), enc("x"), { headers: rollup, timeout: 5_000 }), /rollup/i);
    assert.deepEqual(
      (await pending()).map((r) => r.host),
      ["host-new"],
    );
  });

  it("accept adds it, store credentials issues its creds, and it converges on a push", async () => {
    const wrong = await cli.run(["server", "accept", "host-new", "--fingerprint", "0000000000000000", "--json", ...creds()]);
    assert.equal(wrong.code, 2, wrong.stdout + wrong.stderr);
    assert.match(wrong.stdout, /does not match the announced node key/);
    const accepted = await cli.expect([
      "server",
      "accept",
      "host-new",
      "--fingerprint",
      node.keys.keyId,
      "--group",
      "new",
      "--json",
      ...creds(),
    ]);
    assert.equal(lastJson<{ added: boolean }>(accepted).added, true);
    const list = JSON.parse((await cli.expect(["server", "list", "--json"])).stdout) as {
      host: string;
      node_key_id: string;
      group: string;
    }[];
    assert.deepEqual(
      list.map((s) => [s.host, s.node_key_id, s.group]),
      [["host-new", node.keys.keyId, "new"]],
    );
    assert.deepEqual(await pending(), [], "the accepted announcement is removed");

    await cli.expect(["store", "credentials", "--out", out, "--json"]);
    nats.reload();
    const config = JSON.parse(readFileSync(node.configPath, "utf8")) as Record<string, unknown>;
    writeFileSync(node.configPath, JSON.stringify({ ...config, storeOptions: { credsFile: join(out, "hosts", "host-new.creds") } }));
    agent = spawn("node", [AGENT_BIN, "run", "--config", node.configPath], { stdio: ["ignore", "ignore", "pipe"] });
    agent.stderr!.on("data", (c: Buffer) => (agentLog += c.toString()));
    await waitListening(node.metricsPort, 20_000, "agent host-new");
    const plan = join(world.dir, "plan.sh");
    const result = await cli.run(["push", "--plan", plan, "--servers", "host-new", "--wait", "--timeout", "60s", "--json", ...creds()]);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}\nagent:\n${agentLog}`);
    assert.equal(lastJson<PushSummary>(result).ok, true);
  });
});
