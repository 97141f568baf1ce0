// `fleetplan store credentials`: per-host NATS credentials with least privilege, proven against a
// real nats-server started with the generated nats-server.conf. A node's credential reads its own
// plan, writes its own status and hears its own notices; every other key, the buckets and the
// JetStream API are refused by the server with a permissions violation.
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { connect, credsAuthenticator, headers } from "@nats-io/transport-node";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decode, fromSeed } from "@nats-io/jwt";
import type { Account } from "@nats-io/jwt";
import { createFeed } from "../../agent/store/select.ts";
import { credentialsCommand } from "../../coordinator/cli/credentials.ts";
import { normalizeCoordinatorConfig } from "../../coordinator/config.ts";
import type { CoordinatorConfig } from "../../coordinator/config.ts";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import { openStore } from "../../coordinator/store/select.ts";
import type { CoordinatorDb } from "../../coordinator/db.ts";
import { createAuthority, issueCreds, jwtsInConfig, parseCredsText } from "../../coordinator/store/nats-credentials.ts";
import type { FleetplanError } from "../../shared/errors.ts";
import { silentLogger } from "../../shared/log.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import { defaultInboxPrefix, directGetSubject, kvSubject, notifySubject } from "../../shared/store-layout.ts";
import { consulTestScope, storeConfigFor } from "../fakes/consul.ts";
import { keyPolicy, parseKeyRules } from "../fakes/consul-acl.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { waitFor } from "../helpers/ports.ts";
import { tempDirs } from "../helpers/temp.ts";

const PLANS = STORE_DEFAULTS.planBucket;
const STATUS = STORE_DEFAULTS.statusBucket;
const LAYOUT = { notifyPrefix: STORE_DEFAULTS.notifyPrefix };
const newDir = tempDirs(tmpdir(), "fleetplan-creds-");
const enc = (text: string) => new TextEncoder().encode(text);
const dbs: CoordinatorDb[] = [];
after(() => {
  for (const db of dbs) db.close();
});

const addHosts = (db: CoordinatorDb, hosts: string[]) =>
  db.addServers(
    hosts.map((host) => ({
      host,
      nodeKey: Buffer.alloc(32).toString("base64"),
      nodeKeyId: "00".repeat(8),
      metricsUrl: null,
      ssh: null,
      group: null,
      bootstrapped: true,
      addedAt: 0,
    })),
  );

/** A coordinator database with these hosts, and `store credentials` run against it. */
const setup = (hosts: string[]) => {
  const dir = newDir();
  const db = openCoordinatorDb(join(dir, "fleetplan.db"));
  dbs.push(db);
  addHosts(db, hosts);
  const config: CoordinatorConfig = { ...normalizeCoordinatorConfig({ db: join(dir, "fleetplan.db") }, {}), json: true };
  const out = join(dir, "creds");
  const run = async (flags: { consul?: boolean; rotate?: boolean } = {}) => {
    let stdout = "";
    await credentialsCommand({ out, ...flags }, config, db, { stdout: (t) => (stdout += t), stderr: () => {} });
    const result = JSON.parse(stdout) as { files: { file: string; action: string }[] };
    return Object.fromEntries(result.files.map((f) => [f.file.slice(out.length + 1), f.action]));
  };
  return { db, out, run };
};

const userKey = (file: string): string => parseCredsText(readFileSync(file, "utf8"))!.claims.sub;
const accountClaims = (out: string) => decode<Account>(jwtsInConfig(readFileSync(join(out, "nats-server.conf"), "utf8"))[1]!).nats;
const mode = (file: string) => statSync(file).mode & 0o777;

describe("store credentials: files", { timeout: 30_000 }, () => {
  it("writes one 0600 creds file per host, the coordinator's and the server config; a re-run changes nothing", async () => {
    const { out, run } = setup(["host-a", "web.1"]);
    const first = await run();
    assert.deepEqual(first, {
      "keys/operator.nk": "created",
      "keys/account.nk": "created",
      "keys/system.nk": "created",
      "coordinator.creds": "created",
      "hosts/host-a.creds": "created",
      "hosts/web.1.creds": "created",
      "nats-server.conf": "created",
      "bootstrap.creds": "created",
    });
    for (const file of Object.keys(first)) assert.equal(mode(join(out, file)), 0o600, file);
    assert.equal(mode(join(out, "keys")), 0o700);
    const creds = readFileSync(join(out, "hosts/web.1.creds"), "utf8");
    const perms = parseCredsText(creds)!.claims.nats;
    assert.deepEqual(perms.pub?.allow, [
      directGetSubject(PLANS, "web.1"),
      kvSubject(STATUS, "web.1"),
      kvSubject("fleetplan-logs", "web.1"),
      directGetSubject(PLANS, "_trust.*"),
      directGetSubject(PLANS, "_fresh.web.1"),
    ]);
    assert.deepEqual(perms.sub?.allow, [
      notifySubject(LAYOUT, "web.1"),
      `${defaultInboxPrefix("web.1")}.>`,
      notifySubject(LAYOUT, "_trust.*"),
      notifySubject(LAYOUT, "_fresh.web.1"),
    ]);
    const conf = readFileSync(join(out, "nats-server.conf"), "utf8");

    const second = await run();
    assert.ok(
      Object.entries(second).every(([f, a]) => a === (f === "nats-server.conf" ? "unchanged" : "kept")),
      JSON.stringify(second),
    );
    assert.equal(readFileSync(join(out, "hosts/web.1.creds"), "utf8"), creds);
    assert.equal(readFileSync(join(out, "nats-server.conf"), "utf8"), conf);
  });

  it("issues creds for a new host only, and revokes those of a host removed from the inventory", async () => {
    const { db, out, run } = setup(["host-a"]);
    await run();
    addHosts(db, ["host-c"]);
    assert.deepEqual(await run(), {
      "coordinator.creds": "kept",
      "hosts/host-a.creds": "kept",
      "hosts/host-c.creds": "created",
      "nats-server.conf": "unchanged",
      "bootstrap.creds": "kept",
    });
    const revoked = userKey(join(out, "hosts/host-c.creds"));
    db.removeServer("host-c");
    const third = await run();
    assert.equal(third["hosts/host-c.creds"], "revoked");
    assert.equal(third["nats-server.conf"], "written");
    assert.equal(existsSync(join(out, "hosts/host-c.creds")), false);
    assert.ok(accountClaims(out).revocations?.[revoked], "the removed host's user key is revoked in the account JWT");
  });

  it("never replaces a creds file issued by other keys unless --rotate; --rotate revokes every old user key", async () => {
    const { out, run } = setup(["host-a"]);
    await run();
    const other = setup(["host-a"]);
    await other.run();
    writeFileSync(join(out, "hosts/host-a.creds"), readFileSync(join(other.out, "hosts/host-a.creds")), { mode: 0o600 });
    await assert.rejects(
      run(),
      (e: FleetplanError) => e.reason === "conflict" && /host-a\.creds was issued by another account key.*--rotate/.test(e.message),
    );
    writeFileSync(join(out, "hosts/host-a.creds"), readFileSync(join(other.out, "hosts/host-a.creds")), { mode: 0o600 });
    const oldCoordinator = userKey(join(out, "coordinator.creds"));
    const rotated = await run({ rotate: true });
    assert.equal(rotated["hosts/host-a.creds"], "rotated");
    assert.equal(rotated["coordinator.creds"], "rotated");
    assert.notEqual(userKey(join(out, "coordinator.creds")), oldCoordinator);
    assert.ok(accountClaims(out).revocations?.[oldCoordinator]);
  });

  it("--consul writes one ACL policy per host (exact keys) and the coordinator's", async () => {
    const { out, run } = setup(["host-a"]);
    assert.deepEqual(await run({ consul: true }), {
      "consul/coordinator.hcl": "created",
      "consul/bootstrap.hcl": "created",
      "consul/hosts/host-a.hcl": "created",
    });
    const policy = readFileSync(join(out, "consul/hosts/host-a.hcl"), "utf8");
    assert.match(policy, /^key "fleetplan\/plans\/host-a" \{\n {2}policy = "read"\n\}$/m);
    assert.match(policy, /^key "fleetplan\/status\/host-a" \{\n {2}policy = "write"\n\}$/m);
    // The one prefix a node may use: reading trust documents (every version), which every host needs.
    assert.deepEqual(
      [...policy.matchAll(/key_prefix "([^"]*)" \{\n {2}policy = "(\w+)"/g)].map((m) => [m[1], m[2]]),
      [["fleetplan/trust/", "read"]],
    );
    assert.match(policy, /^key "fleetplan\/fresh\/host-a" \{\n {2}policy = "read"\n\}$/m);
    assert.match(readFileSync(join(out, "consul/coordinator.hcl"), "utf8"), /^key_prefix "fleetplan\/" \{\n {2}policy = "write"\n\}$/m);
  });
});

describe("nkeys made with node:crypto", () => {
  it("public keys, signatures and user keys agree with @nats-io/nkeys", async () => {
    for (let i = 0; i < 20; i++) {
      const authority = createAuthority();
      for (const role of ["operator", "account", "system"] as const) {
        const reference = fromSeed(authority[role].getSeed());
        assert.equal(authority[role].getPublicKey(), reference.getPublicKey(), role);
        assert.ok(reference.verify(enc("signed"), authority[role].sign(enc("signed"))), role);
      }
      const creds = parseCredsText(new TextDecoder().decode(await issueCreds(authority, "h", { pub: [], sub: [] })))!;
      assert.equal(fromSeed(enc(creds.seed)).getPublicKey(), creds.claims.sub);
      assert.equal(creds.claims.iss, fromSeed(authority.account.getSeed()).getPublicKey());
    }
  });
});

describe("coordinator --creds / TLS flags", () => {
  it("a missing creds file is an invalid_config error naming the file and the fix", () => {
    assert.throws(
      () => normalizeCoordinatorConfig({ creds: "/nonexistent/coordinator.creds" }, {}),
      (e: FleetplanError) =>
        e.reason === "invalid_config" &&
        /--creds: cannot read \/nonexistent\/coordinator\.creds \(ENOENT\).*store credentials/.test(e.message),
    );
    assert.throws(
      () => normalizeCoordinatorConfig({}, { FLEETPLAN_CREDS: "/nonexistent/c.creds" }),
      /\$FLEETPLAN_CREDS: cannot read \/nonexistent\/c\.creds/,
    );
  });

  it("maps --creds and --tls-* (or their env vars) to the store options", () => {
    const dir = newDir();
    for (const f of ["c.creds", "ca.pem", "cert.pem", "key.pem"]) writeFileSync(join(dir, f), "x", { mode: 0o600 });
    const config = normalizeCoordinatorConfig(
      { creds: join(dir, "c.creds"), "tls-ca": join(dir, "ca.pem") },
      { FLEETPLAN_TLS_CERT: join(dir, "cert.pem"), FLEETPLAN_TLS_KEY: join(dir, "key.pem") },
    );
    assert.equal(config.store.credsFile, join(dir, "c.creds"));
    assert.deepEqual(config.store.tls, { ca: join(dir, "ca.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") });
    assert.throws(() => normalizeCoordinatorConfig({ "tls-cert": join(dir, "cert.pem") }, {}), /--tls-cert and --tls-key go together/);
  });
});

const literal = (text: string) => text.replace(/[$.*>]/g, "\\$&");

/** The server's refusal, as nats.js reports it: a request or publish rejects with it. */
const PUB_DENIED = (subject: string) => new RegExp(`Permissions Violation for Publish to "${literal(subject)}"`);

/** nats.js reports a refused subscription asynchronously: its `closed` promise resolves with the server's error. */
const subscriptionError = async (sub: Subscription): Promise<string> => {
  const timer = new Promise<string>((resolve) => setTimeout(() => resolve("subscription still open after 3 s"), 3_000));
  return Promise.race([sub.closed.then((e) => (e instanceof Error ? e.message : "closed without error")), timer]);
};

describe("store credentials: enforced by nats-server", { timeout: 60_000 }, () => {
  let server: NatsServer;
  let out: string;
  let coordinator: NatsConnection;
  let hostA: NatsConnection;
  let plans: KV;
  let statuses: KV;
  let rerun: ReturnType<typeof setup>["run"];
  const connectAs = (file: string, inboxPrefix?: string) =>
    connect({
      servers: server.url,
      authenticator: credsAuthenticator(readFileSync(file)),
      timeout: 5_000,
      ...(inboxPrefix && { inboxPrefix }),
    });

  before(async () => {
    const s = setup(["host-a", "host-b"]);
    out = s.out;
    rerun = s.run;
    await s.run();
    // An operator's main config including the generated one. JetStream is enabled in the file: with
    // only `-js` on the command line, nats-server 2.9.10 turns JetStream off on a reload.
    writeFileSync(join(out, "..", "main.conf"), "jetstream {}\ninclude ./creds/nats-server.conf\n");
    server = await startNats({ configFile: join(out, "..", "main.conf") });
    coordinator = await connectAs(join(out, "coordinator.creds"));
    const kvm = new Kvm(coordinator);
    plans = await kvm.create(PLANS, {
      history: 5,
      allow_direct: true,
      republish: { src: `$KV.${PLANS}.>`, dest: `${LAYOUT.notifyPrefix}.>`, headers_only: true },
    });
    statuses = await kvm.create(STATUS, { history: 1, allow_direct: true });
    await plans.put("host-a", enc("envelope-a"));
    await plans.put("host-b", enc("envelope-b"));
    await statuses.put("host-b", enc("status-b"));
    hostA = await connectAs(join(out, "hosts/host-a.creds"), defaultInboxPrefix("host-a"));
  });

  after(async () => {
    await hostA?.close();
    await coordinator?.close();
    await server?.stop();
  });

  it("the coordinator creates the buckets, puts envelopes and watches statuses", async () => {
    assert.equal(new TextDecoder().decode((await plans.get("host-a"))!.value), "envelope-a");
    const revision = (await plans.get("host-b"))!.revision;
    await plans.update("host-b", enc("envelope-b2"), revision);
    const watch = await statuses.watch({ key: "host-a" });
    await jetstream(hostA).publish(kvSubject(STATUS, "host-a"), enc("status-a"), { timeout: 5_000 });
    for await (const e of watch) {
      assert.equal(new TextDecoder().decode(e.value), "status-a");
      break;
    }
  });

  it("a node may direct-get its own plan and put its own status (with a PubAck)", async () => {
    const own = await hostA.request(directGetSubject(PLANS, "host-a"), undefined, { timeout: 5_000 });
    assert.equal(own.string(), "envelope-a");
    const ack = await jetstream(hostA).publish(kvSubject(STATUS, "host-a"), enc("running"), { timeout: 5_000 });
    assert.equal(ack.stream, `KV_${STATUS}`);
    assert.equal(new TextDecoder().decode((await statuses.get("host-a"))!.value), "running");
  });

  it("a node receives the notice of a put to its own key", async () => {
    const sub = hostA.subscribe(notifySubject(LAYOUT, "host-a"), { max: 1 });
    await hostA.flush();
    const seq = await plans.put("host-a", enc("envelope-a2"));
    for await (const m of sub) {
      assert.equal(m.headers?.get("Nats-Sequence"), String(seq));
      assert.equal(m.data.length, 0, "headers only");
    }
  });

  it("a node cannot read another host's envelope", async () => {
    for (const [subject, body] of [
      [directGetSubject(PLANS, "host-b"), undefined],
      [`$JS.API.STREAM.MSG.GET.KV_${PLANS}`, `{"last_by_subj":"$KV.${PLANS}.host-b"}`],
    ] as const) {
      await assert.rejects(hostA.request(subject, body, { timeout: 5_000 }), PUB_DENIED(subject));
    }
    // Its own direct-get subject with a body asking for another key: the server refuses the body.
    const sneaky = await hostA.request(directGetSubject(PLANS, "host-a"), `{"last_by_subj":"$KV.${PLANS}.host-b"}`, { timeout: 5_000 });
    assert.equal(sneaky.headers?.code, 408);
    assert.equal(sneaky.data.length, 0);
  });

  it("a node cannot write, delete or purge another host's keys", async () => {
    const js = jetstream(hostA);
    const del = headers();
    del.set("KV-Operation", "DEL");
    const purge = headers();
    purge.set("KV-Operation", "PURGE");
    purge.set("Nats-Rollup", "sub");
    for (const [subject, opts] of [
      [kvSubject(STATUS, "host-b"), {}],
      [kvSubject(PLANS, "host-b"), {}],
      [kvSubject(PLANS, "host-a"), {}],
      [kvSubject(PLANS, "host-b"), { headers: del }],
      [kvSubject(PLANS, "host-b"), { headers: purge }],
      [kvSubject(STATUS, "host-b"), { headers: purge }],
    ] as const) {
      await assert.rejects(js.publish(subject, enc("forged"), { timeout: 5_000, ...opts }), PUB_DENIED(subject));
    }
    assert.equal(new TextDecoder().decode((await statuses.get("host-b"))!.value), "status-b");
    assert.equal((await plans.get("host-b"))!.operation, "PUT");
  });

  it("a node cannot delete or purge a bucket, nor reach the JetStream API (no consumers, so no watches)", async () => {
    const subjects = [
      `$JS.API.STREAM.DELETE.KV_${PLANS}`,
      `$JS.API.STREAM.PURGE.KV_${PLANS}`,
      `$JS.API.STREAM.PURGE.KV_${STATUS}`,
      "$JS.API.INFO",
      `$JS.API.CONSUMER.CREATE.KV_${PLANS}`,
      `$JS.API.STREAM.INFO.KV_${PLANS}`,
    ];
    for (const subject of subjects) {
      await assert.rejects(hostA.request(subject, undefined, { timeout: 5_000 }), PUB_DENIED(subject));
    }
    assert.equal((await plans.status()).values > 0, true, "the plan bucket is still there");
  });

  it("a node cannot subscribe to everything, to others' replies or to another host's notices", async () => {
    const subjects = [
      ">",
      "_INBOX.>",
      notifySubject(LAYOUT, "host-b"),
      `${LAYOUT.notifyPrefix}.>`,
      `${defaultInboxPrefix("host-b")}.>`,
      `$KV.${PLANS}.>`,
    ];
    for (const subject of subjects) {
      const sub = hostA.subscribe(subject);
      assert.match(await subscriptionError(sub), new RegExp(`Permissions Violation for Subscription to "${literal(subject)}"`));
    }
    // The connection survives its refusals.
    assert.equal((await hostA.request(directGetSubject(PLANS, "host-a"), undefined, { timeout: 5_000 })).data.length > 0, true);
  });

  it("after --rotate and a server reload, the old credential is refused (also its open connection) and the new one works", async () => {
    const oldCreds = readFileSync(join(out, "hosts/host-a.creds"));
    const oldConnection = hostA;
    const events: string[] = [];
    void (async () => {
      for await (const s of oldConnection.status()) if (s.type === "error") events.push(s.error.message);
    })();
    assert.equal((await rerun({ rotate: true }))["nats-server.conf"], "written");
    await coordinator.close();
    server.reload();
    await waitFor(
      () => events.some((e) => /User Authentication Revoked/i.test(e)),
      10_000,
      `the server to drop the revoked user (${events.join("; ")})`,
    );
    await oldConnection.close();
    await assert.rejects(
      connect({ servers: server.url, authenticator: credsAuthenticator(oldCreds), timeout: 5_000, maxReconnectAttempts: 0 }),
      /Authorization Violation/,
    );
    hostA = await connectAs(join(out, "hosts/host-a.creds"), defaultInboxPrefix("host-a"));
    assert.equal((await hostA.request(directGetSubject(PLANS, "host-a"), undefined, { timeout: 5_000 })).string(), "envelope-a2");
    coordinator = await connectAs(join(out, "coordinator.creds"));
  });
});

// Against test/fakes/consul.ts, which enforces key / key_prefix rules as Consul documents them: not Consul.
describe("Consul ACL policies from --consul, enforced by the Consul fake", { timeout: 30_000 }, () => {
  const scope = consulTestScope();

  it("the fake applies the most specific rule, an exact key over a prefix, and denies without a rule", () => {
    const rules = parseKeyRules(
      [
        'key_prefix "fleetplan/" { policy = "write" }',
        'key "fleetplan/plans/a" {\n  policy = "read"\n}',
        'key_prefix "fleetplan/plans/a" { policy = "deny" }',
      ].join("\n"),
    );
    assert.equal(keyPolicy(rules, "fleetplan/plans/a"), "read");
    assert.equal(keyPolicy(rules, "fleetplan/plans/ab"), "deny");
    assert.equal(keyPolicy(rules, "fleetplan/status/a"), "write");
    assert.equal(keyPolicy(rules, "other/a"), "deny");
  });

  it("a node token reads its own plan and writes its own status; the coordinator token does the rest", async () => {
    const { out, run } = setup(["host-a", "host-b"]);
    await run({ consul: true });
    const policy = (name: string) => readFileSync(join(out, "consul", name), "utf8");
    const fake = await scope.start({ policies: { coord: policy("coordinator.hcl"), a: policy("hosts/host-a.hcl") } });
    const coordinator = scope.defer(await openStore(storeConfigFor(fake, "coord"), silentLogger));
    await coordinator.put("host-a", enc("envelope-a"));
    await coordinator.put("host-b", enc("envelope-b"));

    const feed = createFeed(storeConfigFor(fake, "a"), silentLogger);
    scope.defer(feed);
    const seen: string[] = [];
    void feed.follow("host-a", { onEnvelope: async (e) => void seen.push(new TextDecoder().decode(e)) });
    await waitFor(() => seen.length > 0, 5_000, "host-a's envelope through its own token");
    assert.deepEqual(seen, ["envelope-a"]);
    await feed.putStatus("host-a", enc("status-a"));
    await assert.rejects(feed.putStatus("host-b", enc("forged")), (e: FleetplanError) => e.reason === "store_rejected");
    assert.deepEqual(
      (await coordinator.statuses()).map((r) => r.key),
      ["host-a"],
    );

    const asA = (path: string, method = "GET", body?: string) =>
      fetch(`${fake.url}/v1/kv/${path}`, { method, headers: { "X-Consul-Token": "a" }, ...(body !== undefined && { body }) });
    for (const [path, method] of [
      ["fleetplan/plans/host-b", "GET"],
      ["fleetplan/plans/host-a", "PUT"],
      ["fleetplan/status/host-b", "PUT"],
      ["fleetplan/plans/host-b", "DELETE"],
      ["fleetplan/plans/?recurse", "DELETE"],
      ["fleetplan/status/host-a0", "PUT"],
    ] as const) {
      const res = await asA(path, method, method === "PUT" ? "forged" : undefined);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.match(await res.text(), /Permission denied/);
    }
    const listing = (await (await asA("fleetplan/?recurse")).json()) as { Key: string }[];
    assert.deepEqual(
      listing.map((e) => e.Key),
      ["fleetplan/plans/host-a", "fleetplan/status/host-a"],
    );
  });
});
