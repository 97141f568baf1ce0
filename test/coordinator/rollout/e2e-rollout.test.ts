// Rollouts end to end: the real CLI, a real nats-server, three real agent processes and a real
// Prometheus for the gates. A wave stops at the first failing canary and `rollout resume`
// continues once the host is fixed; an empty gate answer pauses; a silent host counts against
// the budget; --revert-on-failure puts the previous plan back under higher ids; repeated flags,
// globs, groups and tags select exactly what they say.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openCoordinatorDb } from "../../../coordinator/db.ts";
import { createCli, initWithServers, jsonLines } from "../../helpers/cli.ts";
import type { CliResult, Fleetplan } from "../../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess } from "../../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../../helpers/fleet.ts";
import { startNats } from "../../helpers/nats.ts";
import type { NatsServer } from "../../helpers/nats.ts";
import { startPrometheus } from "../../helpers/prometheus.ts";
import type { PrometheusServer } from "../../helpers/prometheus.ts";

const HOSTS = ["web-1", "web-2", "web-3"];
const PAUSED = 5;
type Rollout = {
  id: number;
  state: string;
  wave: number;
  reason: string | null;
  targets: { host: string; outcome: string; id: number | null; revertId: number | null; revertOutcome: string | null }[];
};

describe("rollouts end to end, three real agents", { timeout: 240_000 }, () => {
  let nats: NatsServer;
  let prom: PrometheusServer;
  let world: World;
  let nodes: Node[];
  let agents: AgentProcess[] = [];
  let cli: Fleetplan;
  let plans: string;
  let fixed: string;

  // Per-host scripts in a fresh --plans directory; `failing` hosts fail until the operator creates `fixed`.
  const writePlans = (label: string, failing: string[] = []): string => {
    const dir = join(plans, label);
    mkdirSync(dir, { recursive: true });
    for (const h of HOSTS)
      writeFileSync(join(dir, `${h}.sh`), failing.includes(h) ? `test -f ${fixed}\necho ${label}\n` : `echo ${label}\n`);
    return dir;
  };
  const rolloutOf = (r: CliResult): Rollout => {
    const last = jsonLines(r.stdout)
      .filter((l) => l.event === "rollout")
      .at(-1);
    assert.ok(last, `no rollout record on stdout (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
    return last as unknown as Rollout;
  };
  const waves = (r: CliResult) =>
    jsonLines(r.stdout)
      .filter((l) => l.event === "wave")
      .map((w) => `${w.wave}:${w.state}:${(w.hosts as string[]).join(",")}`);
  const outcomes = (r: Rollout) => Object.fromEntries(r.targets.map((t) => [t.host, t.outcome]));

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-rollout-");
    nodes = await Promise.all(HOSTS.map((h) => createNode(world, h, nats.url)));
    agents = await Promise.all(nodes.map((n) => startAgentProcess(n)));
    cli = createCli(world, nats.url);
    await initWithServers(cli, nodes);
    plans = join(world.dir, "plans");
    fixed = join(world.dir, "fixed");
    prom = await startPrometheus({ targets: nodes.map((n) => ({ target: `127.0.0.1:${n.metricsPort}`, labels: { host: n.host } })) });
    await prom.waitForTargetsUp(30_000);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await prom?.stop();
    await nats?.stop();
    world?.cleanup();
  });

  it("a failing canary stops the rollout in wave 1; resume continues once the operator fixed it", { timeout: 90_000 }, async () => {
    const first = await cli.expect(["push", "--plans", writePlans("v1"), "--all", "--waves", "1,100%", "--wave-timeout", "30s", "--json"]);
    assert.deepEqual(waves(first), ["1:started:web-1", "1:converged:web-1", "2:started:web-2,web-3", "2:converged:web-2,web-3"]);
    assert.equal(rolloutOf(first).state, "completed");

    const v2 = writePlans("v2", ["web-3"]);
    const stopped = await cli.expect(
      ["push", "--plans", v2, "--all", "--canary", "web-3", "--waves", "1,100%", "--wave-timeout", "30s", "--json"],
      PAUSED,
    );
    const paused = rolloutOf(stopped);
    assert.deepEqual(
      [paused.state, paused.wave, outcomes(paused)],
      ["paused", 0, { "web-3": "failed", "web-1": "pending", "web-2": "pending" }],
    );
    assert.match(paused.reason!, /error budget exhausted: 1 failed \(allowed 0\): web-3 failed/);
    assert.deepEqual(waves(stopped), ["1:started:web-3", "1:paused:web-3"]);
    const shown = await cli.expect(["rollout", "show", String(paused.id)]);
    assert.match(shown.stdout, /paused at wave 1\/2: error budget exhausted/);
    assert.match(shown.stdout, new RegExp(`rollout resume ${paused.id}`));

    writeFileSync(fixed, "");
    // No plan files needed: they are in the database.
    rmSync(v2, { recursive: true });
    const resumed = await cli.expect(["rollout", "resume", String(paused.id), "--json"]);
    const done = rolloutOf(resumed);
    assert.deepEqual([done.state, outcomes(done)], ["completed", { "web-3": "succeeded", "web-1": "succeeded", "web-2": "succeeded" }]);
    // The canary was retried under a new id, higher than the failed one.
    assert.ok(done.targets[0]!.id! > paused.targets[0]!.id!);
    assert.deepEqual((await cli.expect(["rollout", "list", "--json"])).stdout.includes(`"state":"completed"`), true);
  });

  it("abort ends a paused rollout; it can no longer be resumed", { timeout: 60_000 }, async () => {
    rmSync(fixed);
    const stopped = await cli.expect(
      ["push", "--plans", writePlans("v3", ["web-1"]), "--servers", "web-1", "--batch", "1", "--wave-timeout", "30s", "--json"],
      PAUSED,
    );
    const { id } = rolloutOf(stopped);
    assert.match((await cli.expect(["rollout", "abort", String(id)])).stdout, new RegExp(`rollout ${id} aborted at wave 1/1`));
    const again = await cli.run(["rollout", "resume", String(id)]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, new RegExp(`rollout ${id} is aborted; nothing to resume`));
    writeFileSync(fixed, "");
  });

  it("an empty gate answer pauses the rollout after the wave; a true gate lets it complete", { timeout: 90_000 }, async () => {
    const v4 = writePlans("v4");
    const gated = await cli.expect(
      [
        "push",
        "--plans",
        v4,
        "--all",
        "--waves",
        "1,100%",
        "--wave-timeout",
        "30s",
        "--json",
        "--prometheus",
        prom.url,
        "--gate-query",
        'up{job="fleetplan"} == 1',
        "--gate-query",
        'up{job="no-such-job"}',
      ],
      PAUSED,
    );
    const paused = rolloutOf(gated);
    assert.deepEqual(
      [paused.state, paused.wave, outcomes(paused)["web-1"], outcomes(paused)["web-2"]],
      ["paused", 0, "succeeded", "pending"],
    );
    assert.match(paused.reason!, /no-such-job.*empty result/);
    const event = jsonLines(gated.stdout).find((l) => l.event === "wave" && l.state === "paused") as { gates: { pass: boolean }[] };
    assert.deepEqual(
      event.gates.map((g) => g.pass),
      [true, false],
    );
    // Still empty: resuming pauses again, it never passes.
    assert.equal((await cli.run(["rollout", "resume", String(paused.id), "--json"])).code, PAUSED);

    const open = await cli.expect([
      "push",
      "--plans",
      writePlans("v5"),
      "--all",
      "--batch",
      "50%",
      "--wave-timeout",
      "30s",
      "--json",
      "--prometheus",
      prom.url,
      "--gate-query",
      'up{job="fleetplan"} == 1',
    ]);
    assert.equal(rolloutOf(open).state, "completed");
  });

  it("--revert-on-failure puts the previous plan back on every host that moved, under higher ids", { timeout: 90_000 }, async () => {
    rmSync(fixed);
    const db = openCoordinatorDb(cli.dbPath);
    const before = db.expected();
    db.close();
    const r = await cli.expect(
      [
        "push",
        "--plans",
        writePlans("v6", ["web-2"]),
        "--all",
        "--waves",
        "2,100%",
        "--wave-timeout",
        "30s",
        "--revert-on-failure",
        "--json",
      ],
      PAUSED,
    );
    const reverted = rolloutOf(r);
    assert.equal(reverted.state, "reverted");
    assert.deepEqual(outcomes(reverted), { "web-1": "succeeded", "web-2": "failed", "web-3": "pending" });
    const after = openCoordinatorDb(cli.dbPath);
    try {
      const now = after.expected();
      for (const host of ["web-1", "web-2"]) {
        const t = reverted.targets.find((x) => x.host === host)!;
        assert.equal(t.revertOutcome, "succeeded", host);
        assert.ok(t.revertId! > t.id!, `${host}: revert id ${t.revertId} above the rollout's ${t.id}`);
        assert.deepEqual([now.get(host)!.id, now.get(host)!.planHash], [t.revertId, before.get(host)!.planHash]);
      }
      assert.deepEqual(now.get("web-3"), before.get("web-3"));
    } finally {
      after.close();
    }
    // Every reverted host converged on it, by its own metrics.
    await cli.expect(["status", "--servers", "web-1,web-2"]);
    writeFileSync(fixed, "");
  });

  it("repeated single-value flags are refused; globs, groups and tags select the right hosts", { timeout: 60_000 }, async () => {
    for (const args of [
      ["push", "--plan", "x.sh", "--group", "web", "--group", "db"],
      ["status", "--servers", "web-1", "--servers", "web-2"],
    ]) {
      const r = await cli.run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /--(group|servers) given 2 times/);
    }
    const extra = await createNode(world, "db-1", nats.url);
    await cli.expect(["server", "add", "db-1", "--node-key", extra.nodePubPath, "--group", "db", "--tag", "dc=fra", "--tag", "tier=gold"]);
    const plan = join(plans, "one.sh");
    writeFileSync(plan, "echo one\n");
    const targets = async (...sel: string[]) => {
      const r = await cli.expect(["push", "--plan", plan, "--dry-run", "--json", ...sel]);
      return (jsonLines(r.stdout).at(-1)!.targets as { host: string }[]).map((t) => t.host).sort();
    };
    assert.deepEqual(await targets("--servers", "web-*"), ["web-1", "web-2", "web-3"]);
    assert.deepEqual(await targets("--servers", "web-[12],db-1"), ["db-1", "web-1", "web-2"]);
    assert.deepEqual(await targets("--where", "dc=fra", "--where", "tier=gold"), ["db-1"]);
    assert.deepEqual(await targets("--all", "--where", "dc=ams").catch((e: Error) => e.message.includes("none has tags dc=ams")), true);
    assert.ok(existsSync(plan));
  });

  it("a silent host counts against the budget: no report by the wave deadline is a failure", { timeout: 60_000 }, async () => {
    await agents[2]!.stop();
    const r = await cli.expect(
      ["push", "--plans", writePlans("v7"), "--servers", "web-*", "--waves", "100%", "--wave-timeout", "4s", "--json"],
      PAUSED,
    );
    const paused = rolloutOf(r);
    assert.deepEqual(outcomes(paused), { "web-1": "succeeded", "web-2": "succeeded", "web-3": "timeout" });
    assert.match(paused.reason!, /1 failed \(allowed 0\): web-3 timeout/);
  });
});
