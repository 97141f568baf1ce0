// The agent daemon in this process against a real nats-server: each pushed envelope runs once,
// what it reports (metrics, status bucket, ledger), catch-up, redelivery, newest-wins, failures.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readBootTime } from "../../agent/boot-time.ts";
import { parseEnvelope } from "../../shared/envelope.ts";
import type { Plan, PlanStep } from "../../shared/types.ts";
import { metricValue, sealFor, waitFor } from "../helpers/fleet.ts";
import { appendMarker, markerLines, startKvScope, waitMetric } from "../helpers/agent-scope.ts";

const scope = await startKvScope();
after(() => scope.cleanup());
const { kv, world } = scope;

const plan = (steps: PlanStep[]): Plan => ({ kind: "fleetplan/plan", v: 1, files: [], steps });
const hashOf = (envelope: Uint8Array): string => parseEnvelope(envelope).header.plan_hash;
const BOOT = readBootTime();

// kill(pid, 0) throws ESRCH once the process is reaped. Here PID 1 may not reap orphans, so a
// killed orphan can linger as a zombie, which runs nothing: that counts as gone too.
const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, "ESRCH");
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : ") Z";
  return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
};

describe("agent daemon over NATS KV", () => {
  test("a pushed envelope runs exactly once and metrics and status show its id, hash and boot time", async () => {
    const node = await scope.node("push-1");
    const agent = await scope.agent(node);
    await waitMetric(node, "fleetplan_agent_store_connected", (v) => v === 1);
    const envelope = sealFor(world, node, 101, appendMarker(node, "101"));
    const hash = hashOf(envelope);
    await kv.put(node.host, envelope);
    await waitFor(() => agent.ledger.lastSuccess()?.id === 101, 10_000, "run 101 to succeed");
    await agent.idle();
    await sleep(300); // a second delivery would have run by now
    assert.deepEqual(markerLines(node), ["101"]);
    assert.deepEqual(
      agent.ledger.runs(10).map((r) => [r.id, r.state]),
      [[101, "succeeded"]],
    );

    assert.equal(await metricValue(node, "fleetplan_agent_provisioning_id"), 101);
    assert.equal(await metricValue(node, `fleetplan_agent_plan_info{plan_hash="${hash}",provisioning_id="101"}`), 1);
    assert.equal(await metricValue(node, "fleetplan_agent_boot_time_seconds"), BOOT);
    assert.equal(await metricValue(node, "fleetplan_agent_applied_boot_time_seconds"), BOOT);
    assert.equal(await metricValue(node, 'fleetplan_agent_envelopes_total{result="accepted"}'), 1);

    await waitFor(async () => (await kv.status(node.host))?.status?.state === "succeeded", 5_000, "status succeeded");
    const { status } = (await kv.status(node.host))!;
    assert.equal(status?.id, 101);
    assert.equal(status?.plan_hash, hash);
    assert.equal(status?.boot_time, BOOT);
    assert.equal(status?.applied_id, 101);
    assert.equal(status?.applied_hash, hash);
    assert.equal(status?.applied_boot_time, BOOT);
  });

  test("an agent started after the put runs it; restarted, the same envelope is a duplicate and does not rerun", async () => {
    const node = await scope.node("late-1");
    await kv.put(node.host, sealFor(world, node, 201, appendMarker(node, "201")));
    const first = await scope.agent(node);
    await waitFor(() => first.ledger.lastSuccess()?.id === 201, 10_000, "run 201 to succeed");
    await first.stop();

    const second = await scope.agent(node);
    await waitMetric(node, 'fleetplan_agent_envelopes_total{result="duplicate"}', (v) => (v ?? 0) >= 1);
    await second.idle();
    assert.deepEqual(markerLines(node), ["201"]);
    assert.equal(second.ledger.runs(10).length, 1);
    assert.equal(await metricValue(node, "fleetplan_agent_provisioning_id"), 201);
  });

  test("two envelopes in quick succession during a long step: only the newest runs next", async () => {
    const node = await scope.node("burst-1");
    const release = join(node.root, "release");
    const agent = await scope.agent(node);
    await kv.put(node.host, sealFor(world, node, 301, `${appendMarker(node, "301")}\nwhile [ ! -e ${release} ]; do sleep 0.05; done`));
    await waitFor(() => markerLines(node).length === 1, 10_000, "run 301 to start");
    await kv.put(node.host, sealFor(world, node, 302, appendMarker(node, "302")));
    await kv.put(node.host, sealFor(world, node, 303, appendMarker(node, "303")));
    await waitFor(() => agent.ledger.highWaterMark().id === 303, 10_000, "303 to be accepted");
    writeFileSync(release, "");
    await waitFor(() => agent.ledger.lastSuccess()?.id === 303, 10_000, "run 303 to succeed");
    await agent.idle();
    assert.deepEqual(markerLines(node), ["301", "303"]);
    // 302 is superseded, or never read at all: the feed reads only a key's newest value.
    const runs = agent.ledger
      .runs(10)
      .map((r) => [r.id, r.state])
      .reverse();
    assert.deepEqual(
      runs.filter(([id]) => id !== 302),
      [
        [301, "succeeded"],
        [303, "succeeded"],
      ],
    );
    assert.ok(
      runs.every(([id, state]) => id !== 302 || state === "superseded"),
      JSON.stringify(runs),
    );
  });

  test("a failing step skips the later steps, sets last_run_success 0 and keeps plan_info on the last success", async () => {
    const node = await scope.node("fail-1");
    const agent = await scope.agent(node);
    const good = sealFor(world, node, 401, appendMarker(node, "401"));
    await kv.put(node.host, good);
    await waitFor(() => agent.ledger.lastSuccess()?.id === 401, 10_000, "run 401 to succeed");
    await waitMetric(node, "fleetplan_agent_last_run_success", (v) => v === 1);

    const bad = sealFor(
      world,
      node,
      402,
      plan([
        { name: "first", run: appendMarker(node, "402-first") },
        { name: "breaks", run: "exit 3" },
        { name: "never", run: appendMarker(node, "402-never") },
      ]),
    );
    await kv.put(node.host, bad);
    await waitFor(() => agent.ledger.lastFinished()?.id === 402, 10_000, "run 402 to finish");
    const run = agent.ledger.lastFinished()!;
    assert.equal(run.state, "failed");
    assert.equal(run.failedStep, "breaks");
    assert.deepEqual(
      run.steps.map((s) => [s.name, s.exitCode]),
      [
        ["first", 0],
        ["breaks", 3],
      ],
    );
    assert.deepEqual(markerLines(node), ["401", "402-first"]);

    assert.equal(await metricValue(node, "fleetplan_agent_last_run_success"), 0);
    assert.equal(await metricValue(node, `fleetplan_agent_plan_info{plan_hash="${hashOf(bad)}",provisioning_id="402"}`), null);
    assert.equal(await metricValue(node, `fleetplan_agent_plan_info{plan_hash="${hashOf(good)}",provisioning_id="401"}`), 1);
    assert.equal(await metricValue(node, "fleetplan_agent_provisioning_id"), 401);
    assert.equal(await metricValue(node, 'fleetplan_agent_runs_total{result="failed"}'), 1);
    await waitFor(async () => (await kv.status(node.host))?.status?.state === "failed", 5_000, "status failed");
    assert.equal((await kv.status(node.host))?.status?.applied_id, 401);
  });

  test("a step past its timeout has its whole process group killed and is recorded failed, timed out", async () => {
    const node = await scope.node("timeout-1");
    const pidFile = join(node.root, "sleep.pid");
    const agent = await scope.agent(node);
    await kv.put(
      node.host,
      sealFor(
        world,
        node,
        501,
        plan([
          { name: "hangs", run: `sleep 30 & echo $! > ${pidFile}; wait`, timeout_s: 1 },
          { name: "after", run: appendMarker(node, "501-after") },
        ]),
      ),
    );
    await waitFor(() => agent.ledger.lastFinished()?.id === 501, 10_000, "run 501 to finish");
    const run = agent.ledger.lastFinished()!;
    assert.equal(run.state, "failed");
    assert.equal(run.failedStep, "hangs");
    assert.equal(run.steps.length, 1);
    assert.equal(run.steps[0]!.timedOut, true);
    assert.ok(run.steps[0]!.durationMs >= 1_000 && run.steps[0]!.durationMs < 5_000, `duration ${run.steps[0]!.durationMs} ms`);
    assert.ok(existsSync(pidFile));
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    assert.ok(pid > 0);
    await waitFor(() => !isRunning(pid), 3_000, `sleep ${pid} to be gone`);
    assert.deepEqual(markerLines(node), []);
  });
});
