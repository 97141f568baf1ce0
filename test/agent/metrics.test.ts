import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { createAgent } from "../../agent/agent.ts";
import type { Agent } from "../../agent/agent.ts";
import { silentLogger } from "../../shared/log.ts";
import { createNode, createWorld, sealFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";

const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;
let world: World;
let node: Node;
let agent: Agent;

before(async () => {
  world = await createWorld();
  node = await createNode(world, "metrics-1", "nats://127.0.0.1:1");
  agent = await createAgent(node.config, { feed: null, logger: silentLogger });
  const ok = agent.submit(sealFor(world, node, 10, "true"), { source: "test", revision: null });
  const first = ok.accepted ? await ok.outcome : null;
  assert.ok(first && first !== "superseded" && first.result === "succeeded");
  const bad = agent.submit(sealFor(world, node, 11, "exit 3"), { source: "test", revision: null });
  assert.ok(bad.accepted);
  await bad.outcome;
  assert.equal(agent.submit(new Uint8Array(40), { source: "test", revision: null }).accepted, false);
});

after(async () => {
  await agent?.stop();
  world?.cleanup();
});

test("the agent's real /metrics output passes promtool check metrics", { skip: !hasPromtool && "promtool not installed" }, async () => {
  const text = await (await fetch(agent.metricsUrl!)).text();
  assert.match(text, /^fleetplan_agent_plan_info\{plan_hash="[0-9a-f]{64}",provisioning_id="10"\} 1$/m);
  assert.match(text, /^fleetplan_agent_last_run_success 0$/m, "the failed run of id 11 is the last run");
  assert.match(text, /^fleetplan_agent_envelopes_total\{result="malformed"\} 1$/m);
  assert.match(text, /^fleetplan_agent_step_duration_seconds_bucket\{le="\+Inf"\} 2$/m);
  const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.equal((check.stdout + check.stderr).trim(), "", "no lint findings");
});
