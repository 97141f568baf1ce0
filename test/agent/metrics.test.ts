import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { createAgent } from "../../agent/agent.ts";
import type { Agent } from "../../agent/agent.ts";
import { parseAgentMetrics } from "../../coordinator/metrics-parse.ts";
import { silentLogger } from "../../shared/log.ts";
import { createNode, createWorld, sealFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";

const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;
let world: World;
let node: Node;
let agent: Agent;

before(
  async () => {
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
  },
  { timeout: 30_000 },
);

after(
  async () => {
    await agent?.stop();
    world?.cleanup();
  },
  { timeout: 10_000 },
);

test("the agent's real /metrics output passes promtool check metrics", {
  skip: !hasPromtool && "promtool not installed",
  timeout: 30_000,
}, async () => {
  const text = await (await fetch(agent.metricsUrl!)).text();
  assert.match(text, /^fleetplan_agent_plan_info\{plan_hash="[0-9a-f]{64}",provisioning_id="10"\} 1$/m);
  assert.match(text, /^fleetplan_agent_last_run_success 0$/m, "the failed run of id 11 is the last run");
  assert.match(text, /^fleetplan_agent_envelopes_total\{result="malformed"\} 1$/m);
  assert.match(text, /^fleetplan_agent_step_duration_seconds_bucket\{le="\+Inf"\} 2$/m);
  const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.equal((check.stdout + check.stderr).trim(), "", "no lint findings");
});

// The contract dashboards, alerts and `status` rely on: every family, its type and help text, as prom-client served them.
const FAMILIES: Record<string, [string, string]> = {
  fleetplan_agent_provisioning_id: ["gauge", "Provisioning id of the last successfully applied plan."],
  fleetplan_agent_accepted_provisioning_id: ["gauge", "Highest provisioning id ever accepted (high-water mark)."],
  fleetplan_agent_plan_info: ["gauge", "1 for the last successfully applied plan."],
  fleetplan_agent_boot_time_seconds: ["gauge", "Boot time of this machine (btime), unix seconds."],
  fleetplan_agent_applied_boot_time_seconds: ["gauge", "Boot time at which the last successful plan was applied."],
  fleetplan_agent_last_run_success: ["gauge", "1 if the last finished run succeeded, else 0."],
  fleetplan_agent_last_run_timestamp_seconds: ["gauge", "When the last run finished, unix seconds."],
  fleetplan_agent_last_run_duration_seconds: ["gauge", "Duration of the last finished run."],
  fleetplan_agent_running: ["gauge", "1 while a plan is running."],
  fleetplan_agent_store_connected: ["gauge", "1 while connected to the plan store."],
  fleetplan_agent_freshness_expires_timestamp_seconds: [
    "gauge",
    "When the last verified freshness record expires, unix seconds (0: none yet).",
  ],
  fleetplan_agent_missing_update: ["gauge", "1 when the freshness record names an id above the highest this agent accepted."],
  fleetplan_agent_trust_version: ["gauge", "Version of the trust set in force (1: the trust file)."],
  fleetplan_agent_drifted_files: ["gauge", "Files of the last successful plan now missing or changed (content, mode, owner)."],
  fleetplan_agent_drift_check_timestamp_seconds: ["gauge", "When files were last checked for drift, unix seconds (0: never)."],
  fleetplan_agent_info: ["gauge", "Agent version, store, hostname and node key id."],
  fleetplan_agent_envelopes_total: ["counter", "Envelopes seen, by result (accepted or reject reason)."],
  fleetplan_agent_runs_total: ["counter", "Runs finished, by result."],
  fleetplan_agent_step_duration_seconds: ["histogram", "Duration of plan steps."],
};

test("/metrics keeps every family's name, type and help, and the coordinator reads the agent's state from it", {
  timeout: 10_000,
}, async () => {
  const response = await fetch(agent.metricsUrl!);
  assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await response.text();
  const types = Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const helps = Object.fromEntries([...text.matchAll(/^# HELP (\S+) (.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  assert.deepEqual(Object.keys(types).sort(), Object.keys(FAMILIES).sort());
  for (const [name, [type, help]] of Object.entries(FAMILIES)) assert.deepEqual([types[name], helps[name]], [type, help], name);
  assert.match(text, /^fleetplan_agent_runs_total\{result="failed"\} 1$/m);
  assert.match(text, /^fleetplan_agent_envelopes_total\{result="hash_mismatch"\} 0$/m, "every result series exists from the start");
  const reported = parseAgentMetrics(text, Date.now());
  assert.equal(reported.appliedId, 10);
  assert.equal(reported.acceptedId, 11);
  assert.match(reported.planHash ?? "", /^[0-9a-f]{64}$/);
  assert.equal(reported.lastRunSuccess, 0);
  assert.equal(reported.running, false);
  assert.deepEqual([reported.host, reported.nodeKeyId], [node.host, node.keys.keyId]);
});
