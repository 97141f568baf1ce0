// Why a host failed, from the coordinator, with real agents and a real nats-server: the failure
// reason and exit code at `push --wait` and in `history`, the failing step's output through
// `fleetplan logs` (sealed: no node key opens it, a forged record is refused), a host that timed
// out and reported later, and an agent that is down ending the wait early as agent_down.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { PushSummary } from "../../coordinator/push.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { openOutput } from "../../shared/output-seal.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import { logsBucket } from "../../shared/store-layout.ts";
import { CLI_BIN, createCli, initWithServers, lastJson } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess, waitFor } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";

type Summary = PushSummary & { event: "summary" };
type History = { push_id: number; id: number; outcome: string; reason: string | null; message: string | null }[];

describe("failure details: push --wait, history, logs, late reports, dead agents", { timeout: 180_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Record<string, Node>;
  const agents: AgentProcess[] = [];
  let cli: Fleetplan;

  const writeFile = (name: string, text: string): string => {
    const path = join(world.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const plan = (steps: { name: string; run: string }[]) =>
    writeFile(`plan-${Date.now()}.json`, JSON.stringify({ kind: "fleetplan/plan", v: 1, files: [], steps }));
  const logsKv = async () => {
    const nc = await connect({ servers: nats.url });
    return { nc, kv: await new Kvm(nc).open(logsBucket(STORE_DEFAULTS)) };
  };

  before(async () => {
    await sodiumReady();
    [nats, world] = await Promise.all([startNats(), createWorld("fleetplan-e2e-failure-")]);
    const list = await Promise.all(["fail-1", "late-1", "dead-1"].map((h) => createNode(world, h, nats.url)));
    nodes = Object.fromEntries(list.map((n) => [n.host, n]));
    agents.push(await startAgentProcess(nodes["fail-1"]!));
    cli = createCli(world, nats.url);
    await initWithServers(cli, list);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  it("a failing step shows its reason and exit code at push --wait and in history, and logs shows its output", async () => {
    const file = plan([
      { name: "ok", run: "echo first step fine" },
      { name: "migrate", run: "echo 'applying migration 42'\necho 'disk full on /var/lib/db' >&2\nexit 3" },
      { name: "never", run: "echo never runs" },
    ]);
    const pushed = await cli.expect(["push", "--json", "--plan", file, "--servers", "fail-1", "--wait", "--timeout", "60s"], 1);
    const t = lastJson<Summary>(pushed).targets[0]!;
    assert.deepEqual([t.outcome, t.reason], ["failed", "step_failed"], pushed.stdout);
    assert.match(t.message ?? "", /^step 2\/3 exit code 3 \(fleetplan logs fail-1 --id \d+\)$/);

    const history = lastJson<History>(await cli.expect(["history", "fail-1", "--json"]));
    assert.deepEqual([history[0]!.id, history[0]!.outcome, history[0]!.reason], [t.id, "failed", "step_failed"]);
    assert.match(history[0]!.message ?? "", /exit code 3/);
    assert.match((await cli.expect(["history", "fail-1"])).stdout, /failed\s+step_failed\s+step 2\/3 exit code 3/);

    const text = await cli.expect(["logs", "fail-1"]);
    assert.match(text.stdout, new RegExp(`^fail-1 id ${t.id} failed \\S+: step_failed at step 2, exit code 3\\n`));
    assert.match(text.stdout, /applying migration 42\n/);
    assert.match(text.stdout, /disk full on \/var\/lib\/db\n/);
    assert.doesNotMatch(text.stdout, /first step fine/, "only the failing step's output");
    const json = lastJson<{ id: number; exit_code: number; failed_step: number; failure_reason: string; output: string }>(
      await cli.expect(["logs", "fail-1", "--json", "--id", String(t.id)]),
    );
    assert.deepEqual([json.id, json.exit_code, json.failed_step, json.failure_reason], [t.id, 3, 1, "step_failed"]);
    const missing = await cli.run(["logs", "fail-1", "--id", "12345"]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /no stored output for id 12345/);
  });

  it("the stored blob opens with no node key, and a record not signed by the node is refused", async () => {
    const { nc, kv } = await logsKv();
    try {
      const entry = await kv.get("fail-1");
      assert.ok(entry?.value, "a record under fail-1's key");
      const stored = entry.value;
      assert.ok(!new TextDecoder().decode(stored).includes("disk full"), "output in the clear in the store");
      const node = nodes["fail-1"]!;
      const doc = JSON.parse(new TextDecoder().decode(stored)) as Record<string, unknown> & { keys: Record<string, string> };
      for (const key of [node.keys.identity, { publicKey: node.keys.publicKey, privateKey: node.keys.privateKey }]) {
        const asAdmin = { keyId: Object.keys(doc.keys)[0]!, ...key };
        assert.throws(
          () => openOutput(stored, "fail-1", node.keys.identity.publicKey, asAdmin),
          (e: unknown) => e instanceof FleetplanError && e.reason === "decrypt_failed",
        );
      }
      // Whoever can write to the store puts a record claiming another exit code: refused, not shown.
      await kv.put("fail-1", new TextEncoder().encode(JSON.stringify({ ...doc, exit_code: 0 })));
      const forged = await cli.run(["logs", "fail-1"]);
      assert.notEqual(forged.code, 0);
      assert.match(forged.stderr, /not signed by its node identity key/);
      assert.doesNotMatch(forged.stdout, /disk full/);
    } finally {
      await nc.close();
    }
  });

  it("a host that timed out during push --wait and reported later has its outcome in history", async () => {
    const file = plan([{ name: "boom", run: "echo late failure >&2; exit 7" }]);
    const pushed = await cli.expect(["push", "--json", "--plan", file, "--servers", "late-1", "--wait", "--timeout", "2s"], 1);
    const summary = lastJson<Summary>(pushed);
    const t = summary.targets[0]!;
    assert.equal(t.outcome, "timeout", pushed.stdout);
    agents.push(await startAgentProcess(nodes["late-1"]!));
    let history: History = [];
    await waitFor(
      async () => {
        history = lastJson<History>(await cli.expect(["history", "late-1", "--json"]));
        return history[0]!.outcome !== "timeout";
      },
      30_000,
      "late-1 never reported",
    );
    assert.deepEqual(
      [history[0]!.push_id, history[0]!.id, history[0]!.outcome, history[0]!.reason],
      [summary.push_id, t.id, "failed", "step_failed"],
    );
    assert.match(history[0]!.message ?? "", /^reported after the wait ended \(timeout\): step 1\/1 exit code 7/);
    assert.deepEqual(
      history.slice(1).map((h) => h.outcome),
      ["timeout", "pushed"],
    );
    const again = lastJson<History>(await cli.expect(["history", "late-1", "--json"]));
    assert.equal(again.length, history.length, "recorded once");
  });

  it("server list shows tags; rollout abort --no-revert ends a --revert-on-failure rollout without reverting", async () => {
    await cli.expect(["server", "set", "fail-1", "--tag", "dc=fra", "--tag", "tier=gold"]);
    assert.match((await cli.expect(["server", "list"])).stdout, /\btags\b[\s\S]*fail-1 .*dc=fra,tier=gold/);
    const file = plan([{ name: "slow", run: "sleep 4" }]);
    // The coordinator dies mid-wave (kill -9): the rollout stays `running`, as after a crash.
    const child = spawn(
      "node",
      [CLI_BIN, "push", "--plan", file, "--servers", "fail-1", "--waves", "100%", "--revert-on-failure", "--json"],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...cli.env } },
    );
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise((r) => child.once("close", r));
    await waitFor(() => out.includes('"event":"put"'), 30_000, `no put: ${out}`);
    child.kill("SIGKILL");
    await exited;
    const [row] = lastJson<{ id: number; state: string }[]>(await cli.expect(["rollout", "list", "--json"]));
    assert.equal(row!.state, "running");
    const aborted = lastJson<{ state: string }>(await cli.expect(["rollout", "abort", String(row!.id), "--no-revert", "--json"]));
    assert.equal(aborted.state, "aborted");
    const shown = await cli.expect(["rollout", "show", String(row!.id)]);
    assert.doesNotMatch(shown.stdout, /^reverted /m);
    assert.match(shown.stdout, /aborted/);
  });

  it("push --wait stops early for an agent that is down (agent_down), instead of waiting out --timeout", async () => {
    const file = plan([{ name: "noop", run: "true" }]);
    const pushed = await cli.run(["push", "--json", "--plan", file, "--servers", "dead-1", "--wait", "--timeout", "120s"], {
      timeoutMs: 100_000,
    });
    assert.equal(pushed.code, 4, pushed.stdout + pushed.stderr);
    const t = lastJson<Summary>(pushed).targets[0]!;
    assert.deepEqual([t.outcome, t.reason], ["agent_down", "agent_down"]);
    assert.match(t.message ?? "", /unreachable 3 times in a row/);
    assert.ok(pushed.ms < 30_000, `took ${pushed.ms} ms`);
  });
});
