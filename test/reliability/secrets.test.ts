// Secrets never leak (issue 7 item 4): plans carrying secret file contents and secret step env
// values go through success, failure, step timeout and rejection, pushed by the coordinator CLI
// (--json) to real agent processes logging at debug level. Then every place an operator or
// attacker could read is searched: agent stderr, CLI output, status values, /metrics, every
// ledger row, every coordinator row, the run logs (these steps print no secret) and the
// envelopes in the store.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { formatNodePublic } from "../../shared/keys.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import type { Plan } from "../../shared/types.ts";
import { CLI_BIN, createNode, createWorld, startAgentProcess } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { dumpDatabase } from "./support.ts";

const run = promisify(execFile);
const secret = () => `fpsecret${randomBytes(12).toString("hex")}`;

// Every path a plan can take; "rejected" is registered with another node's X25519 key (wrong_target)
// beside its own identity key, so its signed rejection is still evidence.
const CASES = {
  "sec-ok": { outcome: "succeeded", step: { name: "configure", run: 'test -n "$DB_PASSWORD"\necho configured' } },
  "sec-fail": { outcome: "failed", step: { name: "migrate", run: 'test -n "$DB_PASSWORD"\necho "migration failed" >&2\nexit 3' } },
  "sec-slow": { outcome: "failed", step: { name: "hang", run: 'test -n "$DB_PASSWORD"\nsleep 30', timeout_s: 1 } },
  "sec-rej": { outcome: "rejected", step: { name: "configure", run: 'test -n "$DB_PASSWORD"' } },
} as const;
type Host = keyof typeof CASES;
const HOSTS = Object.keys(CASES) as Host[];

describe("secrets in plans never leak", { timeout: 120_000 }, () => {
  let nats: NatsServer;
  let world: World;
  const nodes = new Map<Host, Node>();
  const agents = new Map<Host, AgentProcess>();
  const secrets = new Map<Host, { file: string; env: string }>(HOSTS.map((h) => [h, { file: secret(), env: secret() }]));
  let env: NodeJS.ProcessEnv;
  const outputs: string[] = [];

  const cli = async (args: string[]) => {
    const r = await run("node", [CLI_BIN, ...args], { env, maxBuffer: 16 * 1024 * 1024 }).catch((e) => e);
    outputs.push(String(r.stdout), String(r.stderr));
    return { code: typeof r.code === "number" ? r.code : 0, stdout: String(r.stdout) };
  };
  const planFor = (host: Host): Plan => ({
    kind: "fleetplan/plan",
    v: 1,
    files: [
      {
        path: join(nodes.get(host)!.root, "etc", "app.conf"),
        mode: 0o600,
        content: Buffer.from(secrets.get(host)!.file).toString("base64"),
      },
    ],
    steps: [{ ...CASES[host].step, env: { DB_PASSWORD: secrets.get(host)!.env } }],
  });

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-secrets-");
    mkdirSync(join(world.dir, "coordinator"), { mode: 0o700 });
    env = {
      ...process.env,
      FLEETPLAN_DB: join(world.dir, "coordinator", "fleetplan.db"),
      FLEETPLAN_STORE: nats.url,
      FLEETPLAN_ADMIN_KEY: world.adminKeyPath,
    };
    for (const host of HOSTS) nodes.set(host, await createNode(world, host, nats.url, { logLevel: "debug" }));
    await Promise.all(HOSTS.map(async (h) => agents.set(h, await startAgentProcess(nodes.get(h)!))));
    assert.equal((await cli(["init", "--json"])).code, 0);
    for (const host of HOSTS) {
      const own = nodes.get(host)!.keys;
      const nodeKey =
        host === "sec-rej" ? formatNodePublic(nodes.get("sec-ok")!.keys.publicKey, own.identity.publicKey) : nodes.get(host)!.nodePubPath;
      assert.equal(
        (
          await cli([
            "server",
            "add",
            host,
            "--node-key",
            nodeKey,
            "--metrics",
            `127.0.0.1:${nodes.get(host)!.metricsPort}`,
            "--json",
            // sec-rej is registered with sec-ok's key on purpose: its agent rejects the envelope.
            ...(host === "sec-rej" ? ["--allow-shared-key"] : []),
          ])
        ).code,
        0,
      );
    }
    const plans = join(world.dir, "plans");
    mkdirSync(plans);
    for (const host of HOSTS) writeFileSync(join(plans, `${host}.json`), JSON.stringify(planFor(host)));
    const pushed = await cli(["push", "--plans", plans, "--all", "--wait", "--timeout", "60s", "--json"]);
    assert.equal(pushed.code, 1, "not every target succeeded");
    const summary = JSON.parse(pushed.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(
      Object.fromEntries(summary.targets.map((t: { host: string; outcome: string }) => [t.host, t.outcome])),
      Object.fromEntries(HOSTS.map((h) => [h, CASES[h].outcome])),
      "every path was taken",
    );
    await cli(["status", "--json"]);
    await cli(["history", "--json"]);
  });

  after(async () => {
    await Promise.all([...agents.values()].map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  const assertClean = (where: string, text: string) => {
    for (const [host, s] of secrets) {
      for (const value of [s.file, s.env, Buffer.from(s.file).toString("base64")]) {
        assert.ok(!text.includes(value), `${where} contains a secret of ${host}`);
      }
    }
  };

  it("the plans really carried the secrets to the nodes", () => {
    assert.equal(readFileSync(join(nodes.get("sec-ok")!.root, "etc", "app.conf"), "utf8"), secrets.get("sec-ok")!.file);
  });

  it("not in the coordinator CLI's output (push --wait, status, history; --json)", () => {
    assertClean("CLI output", outputs.join("\n"));
  });

  it("not in the status bucket, /metrics, or the envelopes in the store", async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const kvm = new Kvm(nc);
      const [statuses, plans] = [await kvm.open(STORE_DEFAULTS.statusBucket), await kvm.open(STORE_DEFAULTS.planBucket)];
      for (const host of HOSTS) {
        const status = await statuses.get(host);
        assert.ok(status && status.length > 0, `${host} published a status`);
        assertClean(`status of ${host}`, status.string());
        assertClean(`envelope of ${host}`, Buffer.from((await plans.get(host))!.value).toString("latin1"));
        assertClean(`/metrics of ${host}`, await (await fetch(`http://127.0.0.1:${nodes.get(host)!.metricsPort}/metrics`)).text());
      }
    } finally {
      await nc.close();
    }
  });

  it("not in any agent's stderr, ledger row, or run log; nor in any coordinator row", async () => {
    await Promise.all([...agents.values()].map((a) => a.stop()));
    for (const host of HOSTS) {
      const node = nodes.get(host)!;
      const log = agents.get(host)!.log();
      assert.match(log, /"event":"(run_finished|envelope_rejected)"/, `${host} logged its envelope's fate`);
      assertClean(`stderr of ${host}`, log);
      assertClean(`ledger of ${host}`, dumpDatabase(join(node.config.stateDir, "ledger.db")));
      for (const name of readdirSync(node.config.logDir))
        assertClean(`run log ${name}`, readFileSync(join(node.config.logDir, name), "latin1"));
    }
    assertClean("coordinator database", dumpDatabase(env.FLEETPLAN_DB!));
  });
});
