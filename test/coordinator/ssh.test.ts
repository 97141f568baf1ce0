// Day-0 delivery over a real OpenSSH server: `fleetplan push` pipes the sealed envelope to
// `fleetplan-agent apply -` on a not-bootstrapped server, with no store running, and maps
// the agent's exit and reply (or ssh's failure) to one outcome per target.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { createSshDelivery } from "../../coordinator/store/ssh.ts";
import type { ServerRow } from "../../coordinator/db.ts";
import { silentLogger } from "../../shared/log.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import { createCli, lastJson, runCli } from "../helpers/cli.ts";
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
interface Summary {
  ok: boolean;
  targets: Target[];
}

let world: World;
let otherWorld: World;
let sshd: Sshd;
let cli: Fleetplan;
let closedStore: string;
const nodes = new Map<string, Node>();

/** The remote command: this checkout's agent with the node's own agent.json. */
const remoteAgent = (node: Node) => `node ${AGENT_BIN} apply - --json --config ${node.configPath}`;

/** A one-step plan that leaves `marker` under the node's root, or fails with `exit`. */
const writePlan = (name: string, script: string): string => {
  const path = join(world.dir, `${name}.sh`);
  writeFileSync(path, script);
  return path;
};

/** `push --json` over SSH with the test's client config; the summary and the exit code. */
const pushSsh = async (hosts: string[], plan: string, agent: string, env: NodeJS.ProcessEnv = {}) => {
  const result = await cli.run(["push", "--plan", plan, "--servers", hosts.join(","), "--ssh-config", sshd.clientConfig, "--remote-agent", agent, "--json"], { env });
  const summary = lastJson<Summary & { event: string }>(result);
  assert.equal(summary.event, "summary", result.stdout);
  const byHost = new Map(summary.targets.map((t) => [t.host, t]));
  return { result, summary, target: (host: string) => byHost.get(host)! };
};

/** The node's own ledger, read with `fleetplan-agent status`. */
const agentStatus = async (node: Node) => {
  const result = await runCli(["status", "--json", "--config", node.configPath], { bin: AGENT_BIN });
  assert.equal(result.code, 0, result.stderr);
  return lastJson<{ accepted_id: number | null; applied_id: number | null; last_run: { id: number; state: string } | null }>(result);
};

const addServer = async (node: Node, ssh: string) => {
  await cli.expect(["server", "add", node.host, "--node-key", node.nodePubPath, "--ssh", ssh, "--not-bootstrapped", "--json"]);
};

before(async () => {
  world = await createWorld("fleetplan-ssh-");
  otherWorld = await createWorld("fleetplan-ssh-other-");
  sshd = await startSshd();
  // Nothing listens here: SSH-only pushes must not need the store.
  closedStore = `nats://127.0.0.1:${await freePort()}`;
  cli = createCli(world, closedStore);
  await cli.expect(["init", "--json"]);
  for (const host of ["web-1", "web-2", "web-3", "web-4"]) nodes.set(host, await createNode(world, host, closedStore));
  // Its trust file names another admin, not the coordinator's.
  nodes.set("stranger", await createNode(world, "stranger", closedStore, { trust: otherWorld.trustPath }));
  for (const node of nodes.values()) await addServer(node, `root@127.0.0.1:${sshd.port}`);
});

after(async () => {
  await sshd?.stop();
  world?.cleanup();
  otherWorld?.cleanup();
});

describe("push over SSH to a not-bootstrapped server", () => {
  it("runs the plan on the server, records it in its ledger, and pushes again with a new id", async () => {
    const node = nodes.get("web-1")!;
    const marker = join(node.root, "marker");
    const plan = writePlan("marker", `echo day-0 >> ${marker}\n`);

    const dry = await cli.run(["push", "--plan", plan, "--servers", node.host, "--dry-run", "--json"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(lastJson<Summary>(dry).targets.map((t) => [t.via, t.outcome]), [["ssh", "would_push"]]);
    assert.ok(dry.ms < 8_000, `dry run took ${dry.ms} ms`);
    assert.equal(existsSync(marker), false);

    const first = await pushSsh([node.host], plan, remoteAgent(node));
    assert.equal(first.result.code, 0, first.result.stdout + first.result.stderr);
    assert.ok(first.result.ms < 10_000, `push took ${first.result.ms} ms`);
    const t1 = first.target(node.host);
    assert.deepEqual([t1.via, t1.outcome, t1.reason], ["ssh", "succeeded", null]);
    assert.equal(readFileSync(marker, "utf8"), "day-0\n");
    const ledger = await agentStatus(node);
    assert.equal(ledger.applied_id, t1.id);
    assert.deepEqual(ledger.last_run, { ...ledger.last_run, id: t1.id, state: "succeeded" });

    // No metrics, no store: nothing says it converged, so the same plan goes again, under a new id.
    const second = await pushSsh([node.host], plan, remoteAgent(node));
    assert.equal(second.result.code, 0, second.result.stdout + second.result.stderr);
    const t2 = second.target(node.host);
    assert.equal(t2.outcome, "succeeded");
    assert.ok(t2.id! > t1.id!, `id ${t2.id} after ${t1.id}`);
    assert.equal(readFileSync(marker, "utf8"), "day-0\nday-0\n");
    assert.equal((await agentStatus(node)).applied_id, t2.id);
  });

  it("reports the agent's rejection with its reason code, and a failing plan as failed", async () => {
    const stranger = nodes.get("stranger")!;
    const plan = writePlan("touch", `touch ${join(stranger.root, "never")}\n`);
    const rejected = await pushSsh([stranger.host], plan, remoteAgent(stranger));
    assert.equal(rejected.result.code, 1, rejected.result.stdout);
    assert.deepEqual(rejected.target(stranger.host).outcome, "rejected");
    assert.equal(rejected.target(stranger.host).reason, "untrusted_signer");
    assert.equal(existsSync(join(stranger.root, "never")), false);
    assert.equal((await agentStatus(stranger)).accepted_id, null);

    const node = nodes.get("web-2")!;
    const failed = await pushSsh([node.host], writePlan("fail", "echo trying\nexit 7\n"), remoteAgent(node));
    assert.equal(failed.result.code, 1, failed.result.stdout);
    const t = failed.target(node.host);
    assert.deepEqual([t.outcome, t.reason], ["failed", "failed"]);
    assert.match(t.message ?? "", /step .* failed/);
    const ledger = await agentStatus(node);
    assert.deepEqual([ledger.accepted_id, ledger.applied_id, ledger.last_run?.state], [t.id, null, "failed"]);
  });

  it("fails a changed host key and a refused connection per target, delivering to the rest", async () => {
    const good = nodes.get("web-3")!;
    const reinstalled = await startSshd();
    try {
      // The client remembers the first server's key for the second one: as if it was reinstalled.
      appendFileSync(sshd.knownHosts, `[127.0.0.1]:${reinstalled.port} ${sshd.hostKey}\n`);
      const spare = [await createNode(world, "rekeyed", closedStore), await createNode(world, "down", closedStore)];
      await addServer(spare[0]!, `root@127.0.0.1:${reinstalled.port}`);
      await addServer(spare[1]!, `root@127.0.0.1:${await freePort()}`);
      const marker = join(good.root, "good");
      const pushed = await pushSsh([good.host, "rekeyed", "down"], writePlan("good", `touch ${marker}\n`), remoteAgent(good));
      assert.equal(pushed.result.code, 1, pushed.result.stdout);
      assert.equal(pushed.summary.ok, false);
      assert.deepEqual(pushed.summary.targets.map((t) => t.host).sort(), ["down", "rekeyed", good.host]);
      assert.equal(pushed.target(good.host).outcome, "succeeded");
      assert.ok(existsSync(marker));
      const rekeyed = pushed.target("rekeyed");
      assert.deepEqual([rekeyed.outcome, rekeyed.reason], ["ssh_failed", "ssh_failed"]);
      assert.match(rekeyed.message ?? "", /host key verification failed/i);
      const down = pushed.target("down");
      assert.deepEqual([down.outcome, down.reason], ["ssh_failed", "ssh_failed"]);
      assert.match(down.message ?? "", /connection refused/i);
      assert.doesNotMatch(reinstalled.log(), /Accepted publickey/);
    } finally {
      await reinstalled.stop();
    }
  });

  it("names a missing agent on the server", async () => {
    const node = nodes.get("web-4")!;
    const pushed = await pushSsh([node.host], writePlan("missing", "true\n"), "fleetplan-agent-not-installed apply - --json");
    assert.equal(pushed.result.code, 1, pushed.result.stdout);
    const t = pushed.target(node.host);
    assert.deepEqual([t.outcome, t.reason], ["ssh_failed", "agent_missing"]);
    assert.match(t.message ?? "", /fleetplan-agent is not installed on web-4/);
  });
});

describe("createSshDelivery", () => {
  const server = (ssh: string | null): ServerRow => ({
    host: "h", nodeKey: "", nodeKeyId: "", metricsUrl: null, ssh, group: null, bootstrapped: false, addedAt: 0,
  });
  const envelope = new Uint8Array([1, 2, 3]);

  it("gives up on a remote command that outlives its timeout", async () => {
    // The loop ends with the session, so nothing outlives the test on the server either.
    const deliver = createSshDelivery({ logger: silentLogger, configFile: sshd.clientConfig, timeoutMs: 1_500, remoteAgent: "while kill -0 $PPID 2>/dev/null; do sleep 0.1; done" });
    const started = Date.now();
    const result = await deliver(server(`root@127.0.0.1:${sshd.port}`), envelope);
    assert.deepEqual(result, { outcome: "ssh_failed", reason: "ssh_failed", message: "ssh to h timed out" });
    assert.ok(Date.now() - started < 5_000);
  });

  it("names a missing ssh client instead of blaming the agent", async () => {
    const empty = join(world.dir, "empty-path");
    mkdirSync(empty, { recursive: true });
    const path = process.env.PATH;
    process.env.PATH = empty;
    try {
      const result = await createSshDelivery({ logger: silentLogger })(server("root@127.0.0.1:22"), envelope);
      assert.deepEqual([result.outcome, result.reason], ["ssh_failed", "ssh_failed"]);
      assert.match(result.message ?? "", /^ssh to h: .*ENOENT/);
    } finally {
      process.env.PATH = path;
    }
  });

  it("refuses a server without an ssh address", async () => {
    await assert.rejects(createSshDelivery({ logger: silentLogger })(server(null), envelope), (e: Error & { reason?: string }) => e.reason === "invalid_argument" && /server add --ssh/.test(e.message));
  });
});

describe("bootstrap: from SSH to the store", () => {
  let nats: NatsServer;
  before(async () => {
    nats = await startNats();
  });
  after(async () => {
    await nats?.stop();
  });

  it("marks a server bootstrapped once its agent reports through the store, then delivers via the store", async () => {
    const node = await createNode(world, "fresh-1", nats.url);
    await addServer(node, `root@127.0.0.1:${sshd.port}`);
    const env = { FLEETPLAN_STORE: nats.url };
    const plan = writePlan("day0", `echo ssh > ${join(node.root, "day0")}\n`);
    // The store is up but has heard nothing from this agent: still day 0, still SSH.
    const day0 = await pushSsh([node.host], plan, remoteAgent(node), env);
    assert.equal(day0.target(node.host).via, "ssh");
    assert.equal(day0.target(node.host).outcome, "succeeded");

    const agent = await startAgentProcess(node);
    try {
      const problems: string[] = [];
      const store = await createNatsStore(normalizeStoreConfig({ url: nats.url }, problems), { logger: silentLogger });
      try {
        await waitFor(async () => (await store.statuses()).has(node.host), 15_000, "the agent's first status");
      } finally {
        await store.close();
      }
      const later = writePlan("day1", `echo store > ${join(node.root, "day1")}\n`);
      const result = await cli.run(["push", "--plan", later, "--servers", node.host, "--wait", "--timeout", "20s", "--json"], { env });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const t = lastJson<Summary>(result).targets[0]!;
      assert.deepEqual([t.via, t.outcome], ["store", "succeeded"]);
      assert.ok(t.id! > day0.target(node.host).id!);
      assert.equal(readFileSync(join(node.root, "day1"), "utf8"), "store\n");
      const list = await cli.expect(["server", "list", "--json"]);
      const row = (JSON.parse(list.stdout) as { host: string; bootstrapped: boolean }[]).find((s) => s.host === node.host);
      assert.equal(row?.bootstrapped, true);
    } finally {
      await agent.stop();
    }
  });
});
