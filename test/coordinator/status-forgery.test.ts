// Forged status records against the real `fleetplan` CLI, on a real nats-server and on the Consul
// fake: one test per attack, each asserting the outcome AND that nothing was believed (no exit 0, no
// `succeeded` in history, verdict unchanged, host not bootstrapped). A real agent's signed records
// still carry push --wait to success.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { Agent } from "../../agent/agent.ts";
import type { StatusRow } from "../../coordinator/cli/status.ts";
import type { PushSummary } from "../../coordinator/push.ts";
import { generateNodeKey } from "../../shared/keys.ts";
import { signStatusRecord } from "../../shared/status.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import type { AgentStatus, NodeKeyPair } from "../../shared/types.ts";
import { putKey, startFakeConsul } from "../fakes/consul.ts";
import { CLI_BIN, createCli, initWithServers, jsonLines, lastJson } from "../helpers/cli.ts";
import type { CliResult, Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld, startInProcess, waitFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import { initStoreLayout } from "../helpers/store-layout.ts";

type Summary = PushSummary & { event: "summary" };

/** A store the attacker can write status records into, under any key. */
interface Backend {
  url: string;
  writeStatus(key: string, value: Uint8Array): Promise<void>;
  stop(): Promise<void>;
}

const natsBackend = async (): Promise<Backend> => {
  const nats = await startNats();
  await initStoreLayout(nats.url);
  const nc = await connect({ servers: nats.url });
  const kv = await new Kvm(nc).open(STORE_DEFAULTS.statusBucket);
  return {
    url: nats.url,
    writeStatus: async (key, value) => void (await kv.put(key, value)),
    stop: async () => {
      await nc.close();
      await nats.stop();
    },
  };
};

const consulBackend = async (): Promise<Backend> => {
  const fake = await startFakeConsul();
  return {
    url: `consul://127.0.0.1:${fake.port}`,
    writeStatus: async (key, value) => assert.equal(await putKey(fake.url, `fleetplan/status/${key}`, value), 200),
    stop: () => fake.stop(),
  };
};

const status = (host: string, id: number, over: Partial<AgentStatus> = {}): AgentStatus => ({
  host,
  state: "succeeded",
  id,
  plan_hash: null,
  step_index: null,
  steps: 1,
  since: Date.now(),
  boot_time: 1,
  result: "succeeded",
  applied_id: id,
  applied_hash: null,
  applied_boot_time: 1,
  version: "forged",
  ...over,
});
const signedBy = (st: AgentStatus, key: NodeKeyPair) => signStatusRecord(st, key.identity.privateKey);
const unsigned = (st: AgentStatus) => new TextEncoder().encode(JSON.stringify(st));

for (const [name, open] of [
  ["NATS", natsBackend],
  ["Consul fake", consulBackend],
] as const) {
  describe(`forged status records (${name})`, { timeout: 180_000 }, () => {
    let backend: Backend;
    let world: World;
    let cli: Fleetplan;
    let live: Node;
    let peer: Node;
    let day0: Node;
    let agent: Agent | null = null;
    const down = new Map<string, Node>();

    const writePlan = (label: string): string => {
      const path = join(world.dir, `${label}.sh`);
      writeFileSync(path, `echo ${label}\n`);
      return path;
    };

    /** `push --wait` for `host`; once its envelope is put, the attacker writes `forge(id)` into the status store. */
    const pushUnderAttack = async (host: string, forge: (id: number) => { key: string; value: Uint8Array }): Promise<CliResult> => {
      const args = [CLI_BIN, "push", "--json", "--plan", writePlan(host), "--servers", host, "--wait", "--timeout", "4s"];
      const child = spawn("node", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...cli.env } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const done = new Promise<CliResult>((resolve) =>
        child.once("close", (code) => resolve({ code, stdout, stderr, timedOut: false, ms: 0 })),
      );
      const putEvent = () => jsonLines(stdout.slice(0, stdout.lastIndexOf("\n") + 1)).find((e) => e.event === "put" && e.host === host);
      await waitFor(() => putEvent() !== undefined || child.exitCode !== null, 30_000, `the put for ${host}`);
      const put = putEvent();
      assert.ok(put, `no put event: ${stdout}\n${stderr}`);
      const forged = forge(put.id as number);
      await backend.writeStatus(forged.key, forged.value);
      return done;
    };

    /** The attack did not work: exit 1, `timeout` as the outcome, the refusal reported and counted, no `succeeded` recorded. */
    const assertNotBelieved = async (result: CliResult, host: string, reason: string) => {
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const summary = lastJson<Summary>(result);
      assert.deepEqual(
        summary.targets.map((t) => [t.host, t.outcome]),
        [[host, "timeout"]],
      );
      assert.ok((summary.status_refused[reason] ?? 0) >= 1, result.stdout + result.stderr);
      const refused = jsonLines(result.stdout).filter((e) => e.event === "status_refused");
      assert.ok(
        refused.some((e) => e.reason === reason),
        JSON.stringify(refused),
      );
      assert.equal(jsonLines(result.stdout).filter((e) => e.event === "status").length, 0, "nothing refused shows as progress");
      const history = JSON.parse((await cli.expect(["history", host, "--json"])).stdout) as { outcome: string }[];
      assert.deepEqual(history.map((h) => h.outcome).sort(), ["pushed", "timeout"]);
    };

    const statusOf = async (host: string): Promise<StatusRow> => {
      const result = await cli.run(["status", "--servers", host, "--json"]);
      return (JSON.parse(result.stdout) as StatusRow[])[0]!;
    };

    before(async () => {
      [backend, world] = await Promise.all([open(), createWorld("fleetplan-forgery-")]);
      cli = createCli(world, backend.url);
      const hosts = ["down-1", "down-2", "down-3", "down-4"];
      const nodes = await Promise.all(["live-1", "peer-1", "day0-1", ...hosts].map((h) => createNode(world, h, backend.url)));
      [live, peer, day0] = nodes as [Node, Node, Node];
      for (const n of nodes.slice(3)) down.set(n.host, n);
      await initWithServers(
        cli,
        nodes.filter((n) => n !== day0),
      );
      await cli.expect(["server", "add", day0.host, "--node-key", day0.nodePubPath, "--not-bootstrapped", "--ssh", "root@127.0.0.1:1"]);
    });
    after(async () => {
      await agent?.stop();
      await backend?.stop();
      world?.cleanup();
    });

    it("a real agent's signed records verify: push --wait succeeds end to end", async () => {
      agent = await startInProcess(live);
      const result = await cli.run(["push", "--json", "--plan", writePlan("live"), "--servers", live.host, "--wait", "--timeout", "30s"]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const summary = lastJson<Summary>(result);
      assert.deepEqual(
        summary.targets.map((t) => t.outcome),
        ["succeeded"],
      );
      assert.deepEqual(summary.status_refused, {});
      assert.ok(jsonLines(result.stdout).some((e) => e.event === "status" && e.host === live.host));
      await agent.idle();
      await waitFor(async () => (await statusOf(live.host)).verdict === "converged", 15_000, "live-1 converged");
    });

    it("forged succeeded record under the down host's key: push --wait does not succeed (bad_signature)", async () => {
      const forger = generateNodeKey();
      const result = await pushUnderAttack("down-1", (id) => ({ key: "down-1", value: signedBy(status("down-1", id), forger) }));
      await assertNotBelieved(result, "down-1", "bad_signature");
    });

    it("record under another host's key naming the down host: push --wait does not succeed (wrong_host)", async () => {
      // peer-1 is a compromised node: its real identity signs a record naming down-2, under its own key.
      const result = await pushUnderAttack("down-2", (id) => ({ key: peer.host, value: signedBy(status("down-2", id), peer.keys) }));
      await assertNotBelieved(result, "down-2", "wrong_host");
    });

    it("unsigned record under the down host's key: push --wait does not succeed (unsigned)", async () => {
      const result = await pushUnderAttack("down-3", (id) => ({ key: "down-3", value: unsigned(status("down-3", id)) }));
      await assertNotBelieved(result, "down-3", "unsigned");
    });

    it("record signed by another node's identity under the down host's key: push --wait does not succeed (bad_signature)", async () => {
      const result = await pushUnderAttack("down-4", (id) => ({ key: "down-4", value: signedBy(status("down-4", id), peer.keys) }));
      await assertNotBelieved(result, "down-4", "bad_signature");
    });

    it("forged failed record does not flip a converged host in status", async () => {
      const before = await statusOf(live.host);
      assert.equal(before.verdict, "converged");
      const failed = status(live.host, before.expected_id!, { state: "failed", result: "failed", applied_id: null, step_index: 0 });
      for (const [value, reason] of [
        [signedBy(failed, peer.keys), "bad_signature"],
        [unsigned(failed), "unsigned"],
      ] as const) {
        await backend.writeStatus(live.host, value);
        const row = await statusOf(live.host);
        assert.deepEqual([row.verdict, row.status_refused, row.expected_id], ["converged", reason, before.expected_id]);
      }
      const text = await cli.run(["status", "--servers", live.host]);
      assert.match(
        text.stderr,
        /warning: 1 status record\(s\) refused, not signed by their host's node key \(ignored\): live-1 \(unsigned\)/,
      );
      // Control: the same record signed by live-1's own identity is evidence, and does prove the failure.
      await backend.writeStatus(live.host, signedBy(failed, live.keys));
      const proven = await statusOf(live.host);
      assert.deepEqual([proven.verdict, proven.status_refused], ["failed", null]);
      assert.match(proven.why, /run of id \d+ failed at step 1\/1/);
    });

    it("a record marks a not-bootstrapped host bootstrapped only when signed by its own identity", async () => {
      await backend.writeStatus(day0.host, signedBy(status(day0.host, 1, { state: "idle" }), peer.keys));
      const forged = await cli.run(["push", "--json", "--plan", writePlan("day0"), "--servers", day0.host]);
      assert.deepEqual(
        lastJson<Summary>(forged).targets.map((t) => [t.via, t.outcome]),
        [["ssh", "ssh_failed"]],
        forged.stdout + forged.stderr,
      );
      const listed = JSON.parse((await cli.expect(["server", "list", "--json"])).stdout) as { host: string; bootstrapped: boolean }[];
      assert.equal(listed.find((r) => r.host === day0.host)!.bootstrapped, false);

      await backend.writeStatus(day0.host, signedBy(status(day0.host, 1, { state: "idle" }), day0.keys));
      const valid = await cli.run(["push", "--json", "--plan", writePlan("day0b"), "--servers", day0.host, "--dry-run"]);
      assert.deepEqual(
        lastJson<Summary>(valid).targets.map((t) => [t.via, t.outcome]),
        [["store", "would_push"]],
        valid.stdout + valid.stderr,
      );
    });
  });
}
