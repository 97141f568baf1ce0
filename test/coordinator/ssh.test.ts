// Day-0 delivery over a real OpenSSH server: `fleetplan push` pipes the sealed envelope to
// `fleetplan-agent apply -` on a not-bootstrapped server, with no store running, and maps
// the agent's exit and reply (or ssh's failure) to one outcome per target. Then the agent
// reports through the store and the server moves over to store delivery.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openLedger } from "../../agent/ledger.ts";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { ServerRow } from "../../coordinator/db.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { createSshDelivery } from "../../coordinator/store/ssh.ts";
import { silentLogger } from "../../shared/log.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import { createCli, lastJson } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { AGENT_BIN, createNode, createWorld, startAgentProcess, waitFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { startSshd } from "../helpers/sshd.ts";
import type { Sshd } from "../helpers/sshd.ts";

interface Target {
  host: string;
  id: number | null;
  via: string;
  outcome: string;
  reason: string | null;
  message: string | null;
}

let world: World;
let otherWorld: World;
let sshd: Sshd;
let reinstalled: Sshd;
let nats: NatsServer;
let cli: Fleetplan;
const nodes = new Map<string, Node>();
const node = (host: string) => nodes.get(host)!;

/** The remote command: this checkout's agent with the node's own agent.json. */
const remoteAgent = (n: Node) => `node ${AGENT_BIN} apply - --json --config ${n.configPath}`;

const writePlan = (name: string, script: string): string => {
  const path = join(world.dir, `${name}.sh`);
  writeFileSync(path, script);
  return path;
};

/** `push --json` over SSH with the test's client config: exit code, summary, target by host. */
const pushSsh = async (hosts: string[], plan: string, agent: string, env: NodeJS.ProcessEnv = {}) => {
  const result = await cli.run(
    ["push", "--plan", plan, "--servers", hosts.join(","), "--ssh-config", sshd.clientConfig, "--remote-agent", agent, "--json"],
    { env },
  );
  const summary = lastJson<{ event: string; ok: boolean; targets: Target[] }>(result);
  assert.equal(summary.event, "summary", result.stdout + result.stderr);
  const byHost = new Map(summary.targets.map((t) => [t.host, t]));
  return { result, summary, target: (host: string) => byHost.get(host)! };
};

/** The id the coordinator database expects `host` to converge on (null: none). */
const expectedId = (host: string): number | null => {
  const db = openCoordinatorDb(cli.dbPath);
  try {
    return db.expected(host).get(host)?.id ?? null;
  } finally {
    db.close();
  }
};

/** What the node's own ledger (its state dir) says. */
const ledgerOf = (n: Node) => {
  const ledger = openLedger(join(n.config.stateDir, "ledger.db"));
  try {
    return { accepted: ledger.highWaterMark().id, applied: ledger.lastSuccess()?.id ?? null, last: ledger.lastFinished() };
  } finally {
    ledger.close();
  }
};

before(async () => {
  [world, otherWorld, sshd, reinstalled, nats] = await Promise.all([
    createWorld("fleetplan-ssh-"),
    createWorld("fleetplan-ssh-other-"),
    startSshd(),
    startSshd(),
    startNats(),
  ]);
  // Nothing listens here: SSH-only pushes must not need the store.
  const closedStore = `nats://127.0.0.1:${await freePort()}`;
  cli = createCli(world, closedStore);
  for (const host of ["web-1", "web-2", "web-3", "web-4", "rekeyed", "down"]) nodes.set(host, await createNode(world, host, closedStore));
  // Its trust file names another admin, not the coordinator's.
  nodes.set("stranger", await createNode(world, "stranger", closedStore, { trust: otherWorld.trustPath }));
  nodes.set("fresh-1", await createNode(world, "fresh-1", nats.url));
  // The client remembers the first server's key for the second one: as if it had been reinstalled.
  appendFileSync(sshd.knownHosts, `[127.0.0.1]:${reinstalled.port} ${sshd.hostKey}\n`);

  await cli.expect(["init", "--json"]);
  await cli.expect([
    "server",
    "add",
    "web-1",
    "--node-key",
    node("web-1").nodePubPath,
    "--ssh",
    `root@127.0.0.1:${sshd.port}`,
    "--not-bootstrapped",
    "--json",
  ]);
  const ports: Record<string, number> = { rekeyed: reinstalled.port, down: await freePort() };
  const sshOf = (host: string) => `root@127.0.0.1:${ports[host] ?? sshd.port}`;
  const inventory = [...nodes.values()]
    .filter((n) => n.host !== "web-1")
    .map((n) => ({ host: n.host, node_key: n.nodePubPath, ssh: sshOf(n.host), bootstrapped: false }));
  writeFileSync(join(world.dir, "inventory.json"), JSON.stringify(inventory));
  await cli.expect(["server", "import", join(world.dir, "inventory.json"), "--json"]);
});

after(async () => {
  await Promise.all([sshd?.stop(), reinstalled?.stop(), nats?.stop()]);
  world?.cleanup();
  otherWorld?.cleanup();
});

describe("day-0 pushes over SSH", { concurrency: true }, () => {
  it("runs the plan on the server with no store running, records it in its ledger, and pushes again with a new id", async () => {
    const web1 = node("web-1");
    const marker = join(web1.root, "marker");
    const plan = writePlan("marker", `echo day-0 >> ${marker}\n`);

    const dry = await cli.run(["push", "--plan", plan, "--servers", web1.host, "--dry-run", "--json"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(
      lastJson<{ targets: Target[] }>(dry).targets.map((t) => [t.via, t.outcome]),
      [["ssh", "would_push"]],
    );
    assert.ok(dry.ms < 10_000, `dry run took ${dry.ms} ms`);
    assert.equal(existsSync(marker), false);

    const first = await pushSsh([web1.host], plan, remoteAgent(web1));
    assert.equal(first.result.code, 0, first.result.stdout + first.result.stderr);
    const t1 = first.target(web1.host);
    assert.deepEqual([t1.via, t1.outcome, t1.reason], ["ssh", "succeeded", null]);
    assert.equal(readFileSync(marker, "utf8"), "day-0\n");
    const ledger = ledgerOf(web1);
    assert.deepEqual([ledger.accepted, ledger.applied, ledger.last?.id, ledger.last?.state], [t1.id, t1.id, t1.id, "succeeded"]);
    assert.equal(expectedId(web1.host), t1.id);

    // No metrics, no store: nothing says it converged, so the same plan goes again, under a new id.
    const second = await pushSsh([web1.host], plan, remoteAgent(web1));
    assert.equal(second.result.code, 0, second.result.stdout + second.result.stderr);
    const t2 = second.target(web1.host);
    assert.equal(t2.outcome, "succeeded");
    assert.ok(t2.id! > t1.id!, `id ${t2.id} after ${t1.id}`);
    assert.equal(readFileSync(marker, "utf8"), "day-0\nday-0\n");
    assert.equal(ledgerOf(web1).applied, t2.id);
  });

  it("passes the agent's rejection on with its reason code, and nothing runs", async () => {
    const stranger = node("stranger");
    const never = join(stranger.root, "never");
    const pushed = await pushSsh([stranger.host], writePlan("never", `touch ${never}\n`), remoteAgent(stranger));
    assert.equal(pushed.result.code, 3, `every target rejected: exit 3\n${pushed.result.stdout}`);
    const t = pushed.target(stranger.host);
    assert.deepEqual([t.via, t.outcome, t.reason], ["ssh", "rejected", "untrusted_signer"]);
    assert.equal(existsSync(never), false);
    assert.deepEqual(ledgerOf(stranger), { accepted: 0, applied: null, last: null });
    // The agent did not take it, so there is nothing new to converge on.
    assert.equal(expectedId(stranger.host), null);
  });

  it("reports a failing plan as failed, naming the step", async () => {
    const web2 = node("web-2");
    const pushed = await pushSsh([web2.host], writePlan("fail", "echo trying\nexit 7\n"), remoteAgent(web2));
    assert.equal(pushed.result.code, 1, pushed.result.stdout);
    const t = pushed.target(web2.host);
    assert.deepEqual([t.outcome, t.reason, t.message], ["failed", "failed", "step fail.sh failed"]);
    const ledger = ledgerOf(web2);
    assert.deepEqual([ledger.accepted, ledger.applied, ledger.last?.state], [t.id, null, "failed"]);
  });

  it("fails a changed host key and a refused connection per target, delivering to the rest", async () => {
    const web3 = node("web-3");
    const marker = join(web3.root, "good");
    const pushed = await pushSsh([web3.host, "rekeyed", "down"], writePlan("good", `touch ${marker}\n`), remoteAgent(web3));
    assert.equal(pushed.result.code, 1, pushed.result.stdout);
    assert.equal(pushed.summary.ok, false);
    assert.deepEqual(pushed.summary.targets.map((t) => t.host).sort(), ["down", "rekeyed", web3.host]);
    assert.equal(pushed.target(web3.host).outcome, "succeeded");
    assert.ok(existsSync(marker));
    const rekeyed = pushed.target("rekeyed");
    assert.deepEqual([rekeyed.outcome, rekeyed.reason], ["ssh_failed", "ssh_failed"]);
    assert.match(rekeyed.message ?? "", /host key verification failed/i);
    assert.doesNotMatch(reinstalled.log(), /Accepted publickey/);
    const down = pushed.target("down");
    assert.deepEqual([down.outcome, down.reason], ["ssh_failed", "ssh_failed"]);
    assert.match(down.message ?? "", /connection refused/i);
  });

  /** An inventory row that reaches the test's sshd (not bootstrapped: delivered over SSH). */
  const sshdRow = (): ServerRow => ({
    host: "h",
    nodeKey: "",
    nodeKeyId: "",
    metricsUrl: null,
    ssh: `root@127.0.0.1:${sshd.port}`,
    group: null,
    bootstrapped: false,
    addedAt: 0,
  });

  it("keeps host-key checking on when the operator's ssh config turns it off: an unknown server gets nothing", async () => {
    const lax = join(dirname(sshd.clientConfig), "ssh_config_lax");
    const config = readFileSync(sshd.clientConfig, "utf8")
      .replace("StrictHostKeyChecking yes", "StrictHostKeyChecking no")
      .replace(/UserKnownHostsFile \S+/, "UserKnownHostsFile /dev/null");
    writeFileSync(lax, config);
    const row = sshdRow();
    const deliver = createSshDelivery({ logger: silentLogger, configFile: lax, timeoutMs: 10_000, remoteAgent: "echo '{\"ok\":true}'" });
    const result = await deliver(row, new Uint8Array([1, 2, 3]));
    assert.deepEqual([result.outcome, result.reason], ["ssh_failed", "ssh_failed"]);
    assert.match(result.message ?? "", /host key verification failed/i);
  });

  it("names a missing agent on the server", async () => {
    const pushed = await pushSsh(["web-4"], writePlan("missing", "true\n"), "fleetplan-agent-not-installed apply - --json");
    assert.equal(pushed.result.code, 4, `the only target unreachable: exit 4\n${pushed.result.stdout}`);
    const t = pushed.target("web-4");
    assert.deepEqual([t.outcome, t.reason], ["ssh_failed", "agent_missing"]);
    assert.match(t.message ?? "", /^fleetplan-agent is not installed on web-4 \(.*command not found\)$/);
  });

  it("gives up on a remote command that outlives the delivery timeout", async () => {
    const row = sshdRow();
    // The loop ends with its ssh session, so nothing outlives the test on the server either.
    const deliver = createSshDelivery({
      logger: silentLogger,
      configFile: sshd.clientConfig,
      timeoutMs: 1_500,
      remoteAgent: "while kill -0 $PPID 2>/dev/null; do sleep 0.1; done",
    });
    const started = Date.now();
    assert.deepEqual(await deliver(row, new Uint8Array([1, 2, 3])), {
      outcome: "ssh_failed",
      reason: "ssh_failed",
      message: "ssh to h timed out",
    });
    assert.ok(Date.now() - started < 5_000);
  });

  it("marks a server bootstrapped once its agent reports through the store, then delivers via the store", async () => {
    const fresh = node("fresh-1");
    const env = { FLEETPLAN_STORE: nats.url };
    // The store is up but has heard nothing from this agent: still day 0, still SSH.
    const day0 = await pushSsh([fresh.host], writePlan("day0", `echo ssh > ${join(fresh.root, "day0")}\n`), remoteAgent(fresh), env);
    assert.deepEqual([day0.target(fresh.host).via, day0.target(fresh.host).outcome], ["ssh", "succeeded"]);

    const agent = await startAgentProcess(fresh);
    try {
      const store = await createNatsStore(normalizeStoreConfig({ url: nats.url }, []), { logger: silentLogger });
      try {
        await waitFor(async () => (await store.statuses()).some((r) => r.key === fresh.host), 15_000, "the agent's first status");
      } finally {
        await store.close();
      }
      // A dry run shows the switch to the store but leaves the inventory alone.
      const dry = await cli.run(["push", "--plan", writePlan("dry1", "true\n"), "--servers", fresh.host, "--dry-run", "--json"], { env });
      assert.equal(dry.code, 0, dry.stdout + dry.stderr);
      assert.deepEqual(
        lastJson<{ targets: Target[] }>(dry).targets.map((t) => [t.via, t.outcome]),
        [["store", "would_push"]],
      );
      const listed = JSON.parse((await cli.expect(["server", "list", "--json"])).stdout) as { host: string; bootstrapped: boolean }[];
      assert.equal(listed.find((r) => r.host === fresh.host)!.bootstrapped, false);

      const result = await cli.run(
        [
          "push",
          "--plan",
          writePlan("day1", `echo store > ${join(fresh.root, "day1")}\n`),
          "--servers",
          fresh.host,
          "--wait",
          "--timeout",
          "20s",
          "--json",
        ],
        { env },
      );
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const t = lastJson<{ targets: Target[] }>(result).targets[0]!;
      assert.deepEqual([t.via, t.outcome], ["store", "succeeded"]);
      assert.ok(t.id! > day0.target(fresh.host).id!);
      assert.equal(readFileSync(join(fresh.root, "day1"), "utf8"), "store\n");
      const list = await cli.expect(["server", "list", "--json"]);
      const rows = JSON.parse(list.stdout) as { host: string; bootstrapped: boolean }[];
      assert.deepEqual(
        rows.filter((r) => r.bootstrapped).map((r) => r.host),
        [fresh.host],
      );
    } finally {
      await agent.stop();
    }
  });
});
