// Drift end to end: real `fleetplan-agent run` processes, a real nats-server and the `fleetplan` CLI.
// A pushed plan writes a file; someone edits it: `fleetplan-agent drift` names it (exit 1), SIGUSR1
// makes the daemon count it (metric and signed status), `fleetplan status` says `drifted`, and the
// same plan pushed again without --force gets a new id and restores the file. A second agent, on a
// 1 s interval, finds a mode-only change on its own.
import assert from "node:assert/strict";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { StatusRow } from "../../coordinator/cli/status.ts";
import type { PushSummary } from "../../coordinator/push.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import { createCli, initWithServers, lastJson, runCli } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { AGENT_BIN, createNode, createWorld, metricValue, startAgentProcess, waitFor } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";

const CONTENT = "managed by fleetplan\n";

describe("drift end to end", { timeout: 120_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let manual: Node;
  let timed: Node;
  const agents: AgentProcess[] = [];
  let cli: Fleetplan;
  const file = (n: Node) => join(n.root, "etc", "motd");
  const planFile = (n: Node) => join(world.dir, `${n.host}.json`);

  const drift = (n: Node) => runCli(["drift", "--config", n.configPath, "--json"], { bin: AGENT_BIN });
  const verdicts = async () => {
    const result = await cli.run(["status", "--all", "--json"]);
    return Object.fromEntries(lastJson<StatusRow[]>(result).map((r) => [r.host, `${r.verdict}: ${r.why}`]));
  };
  const push = async (n: Node) =>
    lastJson<PushSummary>(await cli.expect(["push", "--plan", planFile(n), "--servers", n.host, "--wait", "--timeout", "30s", "--json"]));
  const signedDrift = async (host: string): Promise<unknown> => {
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).open(STORE_DEFAULTS.statusBucket);
      const entry = await kv.get(host);
      return entry ? (JSON.parse(entry.string()) as { status: { drifted_files?: unknown } }).status.drifted_files : undefined;
    } finally {
      await nc.close();
    }
  };

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-drift-");
    manual = await createNode(world, "drift-1", nats.url, { driftInterval: "1h" });
    timed = await createNode(world, "drift-2", nats.url, { driftInterval: "1s" });
    for (const n of [manual, timed]) {
      const plan = {
        kind: "fleetplan/plan",
        v: 1,
        files: [{ path: file(n), mode: "0644", content: Buffer.from(CONTENT).toString("base64") }],
        steps: [{ name: "noop", run: "true" }],
      };
      writeFileSync(planFile(n), JSON.stringify(plan));
    }
    agents.push(await startAgentProcess(manual), await startAgentProcess(timed));
    cli = createCli(world, nats.url);
    await initWithServers(cli, [manual, timed]);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  it("an edited file: drift names it, the daemon counts it on SIGUSR1, status says drifted, push restores it", async () => {
    const first = await push(manual);
    assert.equal(first.targets[0]!.outcome, "succeeded");
    assert.equal(readFileSync(file(manual), "utf8"), CONTENT);
    const clean = await drift(manual);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.equal(lastJson<{ drifted: number }>(clean).drifted, 0);
    assert.match((await verdicts())[manual.host]!, /^converged/);
    await waitFor(async () => (await signedDrift(manual.host)) === 0, 5_000, "signed status with drifted_files 0");

    writeFileSync(file(manual), "edited by hand\n");
    const found = await drift(manual);
    assert.equal(found.code, 1, found.stdout + found.stderr);
    const report = lastJson<{ drifted: number; applied_id: number; files: { path: string; problems: string[] }[] }>(found);
    assert.equal(report.drifted, 1);
    assert.equal(report.applied_id, first.targets[0]!.id);
    assert.deepEqual(report.files, [{ path: file(manual), drifted: true, problems: ["content"], detail: "content differs" }]);
    const text = await runCli(["drift", "--config", manual.configPath], { bin: AGENT_BIN });
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`${file(manual)}\\s+drifted\\s+content differs`));
    assert.match(text.stdout, /1 of 1 file\(s\) drifted/);

    // The CLI's check is its own: the daemon learns on SIGUSR1 (or its next periodic check).
    assert.equal(await metricValue(manual, "fleetplan_agent_drifted_files"), 0);
    agents[0]!.child.kill("SIGUSR1");
    await waitFor(async () => (await metricValue(manual, "fleetplan_agent_drifted_files")) === 1, 5_000, "drifted_files metric 1");
    await waitFor(async () => (await signedDrift(manual.host)) === 1, 5_000, "signed status with drifted_files 1");
    assert.match(agents[0]!.log(), /"drift_detected"/);
    assert.match((await verdicts())[manual.host]!, /^drifted: applied id \d+, but 1 file\(s\) it wrote changed/);
    assert.equal((await cli.run(["status", "--servers", manual.host])).code, 1);

    const again = await push(manual);
    const target = again.targets[0]!;
    assert.equal(target.action, "push");
    assert.equal(target.decision, "drifted");
    assert.equal(target.outcome, "succeeded");
    assert.ok(target.id! > first.targets[0]!.id!, "a new id");
    assert.equal(target.plan_hash, first.targets[0]!.plan_hash);
    assert.equal(readFileSync(file(manual), "utf8"), CONTENT);
    assert.equal((await drift(manual)).code, 0);
    assert.equal(await metricValue(manual, "fleetplan_agent_drifted_files"), 0);
    assert.match((await verdicts())[manual.host]!, /^converged/);
    // Converged again: the same plan is skipped.
    const third = await push(manual);
    assert.equal(third.targets[0]!.outcome, "skipped");
  });

  it("a mode-only change is found by the periodic check, and by drift", async () => {
    assert.equal((await push(timed)).targets[0]!.outcome, "succeeded");
    await waitFor(async () => (await metricValue(timed, "fleetplan_agent_drift_check_timestamp_seconds"))! > 0, 5_000, "a periodic check");
    assert.equal(await metricValue(timed, "fleetplan_agent_drifted_files"), 0);
    chmodSync(file(timed), 0o666);
    assert.equal(statSync(file(timed)).mode & 0o777, 0o666);
    const found = await drift(timed);
    assert.equal(found.code, 1, found.stdout + found.stderr);
    assert.deepEqual(
      lastJson<{ files: { problems: string[]; detail: string }[] }>(found).files.map((f) => [f.problems, f.detail]),
      [[["mode"], "mode 0666, 0644 written"]],
    );
    await waitFor(
      async () => (await metricValue(timed, "fleetplan_agent_drifted_files")) === 1,
      6_000,
      "periodic check counts the mode change",
    );
    assert.match((await verdicts())[timed.host]!, /^drifted/);
    chmodSync(file(timed), 0o644);
    await waitFor(
      async () => (await metricValue(timed, "fleetplan_agent_drifted_files")) === 0,
      6_000,
      "drift cleared by hand is seen too",
    );
    assert.match((await verdicts())[timed.host]!, /^converged/);
  });
});
