// `fleetplan push --wait` against real agents and a real nats-server, for the ways a wait can end
// other than success: an agent refusing the envelope before it could verify it (exit 3), the
// store restarting mid-wait (the wait carries on), and Ctrl-C (recorded, exit 130).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { PushSummary } from "../../coordinator/push.ts";
import { CLI_BIN, createCli, initWithServers, jsonLines, lastJson } from "../helpers/cli.ts";
import type { CliResult, Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess, waitFor } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";

type Summary = PushSummary & { event: "summary" };

describe("push --wait: rejections, store restarts, Ctrl-C", { timeout: 120_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let otherWorld: World;
  let nodes: Node[];
  let agents: AgentProcess[] = [];
  let cli: Fleetplan;

  const writePlan = (name: string, script: string): string => {
    const path = join(world.dir, `${name}.sh`);
    writeFileSync(path, script);
    return path;
  };

  /** `fleetplan push --json ARGS` as a child the test can act on while it runs. */
  const startPush = (args: string[]) => {
    const started = Date.now();
    const child = spawn("node", [CLI_BIN, "push", "--json", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...cli.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    const done = new Promise<CliResult>((resolve) =>
      child.once("close", (code) => {
        clearTimeout(killer);
        resolve({ code, stdout, stderr, timedOut: false, ms: Date.now() - started });
      }),
    );
    /** Resolves once an event printed so far (complete lines only) matches. */
    const seen = (match: (e: Record<string, unknown>) => boolean, what: string) =>
      waitFor(() => jsonLines(stdout.slice(0, stdout.lastIndexOf("\n") + 1)).some(match), 30_000, `${what}\n${stdout}\n${stderr}`);
    return { child, done, seen };
  };

  before(async () => {
    [nats, world, otherWorld] = await Promise.all([
      startNats(),
      createWorld("fleetplan-e2e-wait-"),
      createWorld("fleetplan-e2e-wait-other-"),
    ]);
    nodes = await Promise.all([
      createNode(world, "steady-1", nats.url),
      // Trusts another admin: every envelope from this coordinator is untrusted_signer.
      createNode(world, "stranger", nats.url, { trust: otherWorld.trustPath }),
      // No agent runs for it: a wait for it can only time out or be interrupted.
      createNode(world, "silent-1", nats.url),
    ]);
    agents = await Promise.all(nodes.slice(0, 2).map((n) => startAgentProcess(n)));
    cli = createCli(world, nats.url);
    await initWithServers(cli, nodes);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
    otherWorld?.cleanup();
  });

  // Twice in a row: the agent's status for a refusal it could not verify is throttled to one per
  // reason each 200 ms (it was once a minute, and the second push then waited out --timeout).
  for (const [plan, title] of [
    ["refused", "an agent refusing the envelope before verifying it ends the wait at once as rejected, exit 3"],
    ["refused-again", "so does the next refused push right after it"],
  ]) {
    it(title!, async () => {
      const result = await cli.run([
        "push",
        "--plan",
        writePlan(plan!, `echo never ${plan}\n`),
        "--servers",
        "stranger",
        "--wait",
        "--timeout",
        "45s",
        "--json",
      ]);
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.ok(result.ms < 30_000, `push took ${result.ms} ms`);
      const t = lastJson<Summary>(result).targets[0]!;
      assert.deepEqual([t.host, t.outcome, t.reason], ["stranger", "rejected", "untrusted_signer"]);
    });
  }

  it("a nats-server killed and restarted during the wait does not end it: the agent's success is still seen", async () => {
    const marker = join(nodes[0]!.root, "after-restart");
    const run = startPush([
      "--plan",
      writePlan("slow", `sleep 2\necho done > ${marker}\n`),
      "--servers",
      "steady-1",
      "--wait",
      "--timeout",
      "60s",
    ]);
    await run.seen((e) => e.event === "status" && e.state === "running", "the agent to start the plan");
    await nats.kill9();
    // Longer than the CLI's nats client keeps reconnecting (3 attempts, 1–2 s apart): its connection closes.
    await new Promise((r) => setTimeout(r, 8_000));
    await nats.restart();
    const result = await run.done;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const t = lastJson<Summary>(result).targets[0]!;
    assert.deepEqual([t.host, t.outcome], ["steady-1", "succeeded"]);
  });

  it("Ctrl-C during the wait records the push and wait_interrupted, prints the summary and exits 130", async () => {
    const run = startPush(["--plan", writePlan("unheard", "echo hi\n"), "--servers", "silent-1", "--wait", "--timeout", "60s"]);
    await run.seen((e) => e.event === "put", "the put");
    run.child.kill("SIGINT");
    const result = await run.done;
    assert.equal(result.code, 130, result.stdout + result.stderr);
    const summary = lastJson<Summary>(result);
    const t = summary.targets[0]!;
    assert.deepEqual([t.host, t.outcome, t.reason], ["silent-1", "wait_interrupted", "wait_interrupted"]);
    assert.ok(result.ms < 20_000, `push took ${result.ms} ms after Ctrl-C`);
    const history = lastJson<{ push_id: number; id: number; outcome: string }[]>(await cli.expect(["history", "silent-1", "--json"]));
    assert.deepEqual(
      history.map((h) => [h.push_id, h.id, h.outcome]),
      [
        [summary.push_id, t.id, "wait_interrupted"],
        [summary.push_id, t.id, "pushed"],
      ],
    );
  });
});
