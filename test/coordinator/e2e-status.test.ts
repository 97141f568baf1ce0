// `fleetplan status` end to end: three real agents, scraped by a real Prometheus and directly.
// Both sources agree on convergence; an unchanged push then skips everyone; a new boot time
// shows as `rebooted`; a stopped agent is `unknown` through Prometheus (its target is down, `up`
// 0) and by direct scrape (nothing answers) alike, never `converged`.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import type { StatusRow } from "../../coordinator/cli/status.ts";
import type { PushSummary } from "../../coordinator/push.ts";
import { createCli, initWithServers, lastJson } from "../helpers/cli.ts";
import type { CliResult, Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess, waitFor } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { openPlanBucket } from "../helpers/kv.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { startPrometheus } from "../helpers/prometheus.ts";
import type { PrometheusServer } from "../helpers/prometheus.ts";

const HOSTS = ["app-1", "app-2", "app-3"];

describe("status end to end, three real agents and a real Prometheus", { timeout: 90_000 }, () => {
  let nats: NatsServer;
  let prom: PrometheusServer;
  let world: World;
  let nodes: Node[];
  const agents: AgentProcess[] = [];
  let cli: Fleetplan;
  let plan: string;

  const status = async (extra: string[] = []): Promise<{ result: CliResult; rows: Map<string, StatusRow> }> => {
    const result = await cli.run(["status", "--all", "--json", ...extra]);
    if (result.code !== 0 && result.code !== 1) throw new Error(`status exited ${result.code}: ${result.stdout}${result.stderr}`);
    return { result, rows: new Map(lastJson<StatusRow[]>(result).map((r) => [r.host, r])) };
  };
  const verdicts = (rows: Map<string, StatusRow>) => Object.fromEntries([...rows].map(([h, r]) => [h, r.verdict]));
  // Prometheus answers with what it scraped up to a second ago: poll until it has caught up.
  const statusUntil = async (extra: string[], want: Record<string, string>) => {
    let last: Map<string, StatusRow> = new Map();
    await waitFor(
      async () => {
        last = (await status(extra)).rows;
        return JSON.stringify(verdicts(last)) === JSON.stringify(want);
      },
      15_000,
      `status ${extra.join(" ")} = ${JSON.stringify(want)}`,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last: ${JSON.stringify([...last.values()])}`);
    });
    return last;
  };

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-status-");
    nodes = await Promise.all(HOSTS.map((h) => createNode(world, h, nats.url)));
    agents.push(...(await Promise.all(nodes.map((n) => startAgentProcess(n)))));
    prom = await startPrometheus({ targets: nodes.map((n) => `127.0.0.1:${n.metricsPort}`) });
    cli = createCli(world, nats.url);
    await initWithServers(cli, nodes);
    plan = join(world.dir, "base.sh");
    writeFileSync(plan, "echo base > /dev/null\n");
    await prom.waitForTargetsUp();
  });
  after(async () => {
    await prom?.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  it("after push --wait, Prometheus and a direct scrape both report every agent converged on the expected id", async () => {
    const pushed = lastJson<PushSummary>(await cli.expect(["push", "--plan", plan, "--all", "--wait", "--timeout", "30s", "--json"]));
    assert.deepEqual(pushed.counts, { succeeded: 3 });
    const ids = new Map(pushed.targets.map((t) => [t.host, t.id]));
    const allConverged = Object.fromEntries(HOSTS.map((h) => [h, "converged"]));

    const viaProm = await statusUntil(["--prometheus", prom.url], allConverged);
    const direct = await status();
    assert.equal(direct.result.code, 0);
    assert.deepEqual(verdicts(direct.rows), allConverged);
    for (const rows of [viaProm, direct.rows]) {
      for (const host of HOSTS) {
        const r = rows.get(host)!;
        assert.equal(r.expected_id, ids.get(host));
        assert.equal(r.reported_id, r.expected_id);
        assert.equal(r.reported_hash, r.expected_hash);
        assert.equal(r.last_result, "succeeded");
      }
    }
  });

  it("an identical second push (convergence from Prometheus) skips all three and writes nothing", async () => {
    const bucket = await openPlanBucket(nats.url);
    try {
      const before = await bucket.revisions(HOSTS);
      const summary = lastJson<PushSummary>(
        await cli.expect(["push", "--plan", plan, "--all", "--wait", "--json", "--prometheus", prom.url]),
      );
      assert.deepEqual(summary.counts, { skipped: 3 });
      assert.deepEqual(
        summary.targets.map((t) => t.decision),
        ["converged", "converged", "converged"],
      );
      assert.deepEqual(await bucket.revisions(HOSTS), before);
    } finally {
      await bucket.close();
    }
  });

  it("an agent restarted with a different boot time is `rebooted`, not converged", async () => {
    const btime = Number(/^btime\s+(\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))![1]);
    const procStat = join(world.dir, "proc-stat-rebooted");
    writeFileSync(procStat, `cpu  1 2 3 4\nbtime ${btime + 3600}\nprocesses 1\n`);
    await agents[0]!.stop();
    agents[0] = await startAgentProcess(nodes[0]!, { FLEETPLAN_PROC_STAT: procStat });

    const want = { "app-1": "rebooted", "app-2": "converged", "app-3": "converged" };
    const direct = await status();
    assert.equal(direct.result.code, 1);
    assert.deepEqual(verdicts(direct.rows), want);
    assert.deepEqual([direct.rows.get("app-1")!.boot_time, direct.rows.get("app-1")!.applied_boot_time], [btime + 3600, btime]);
    assert.equal(direct.rows.get("app-1")!.reported_id, direct.rows.get("app-1")!.expected_id);
    await statusUntil(["--prometheus", prom.url], want);
  });

  it("a stopped agent is `unknown` through Prometheus (up == 0) as by a direct scrape", async () => {
    await agents[2]!.stop();
    await sleep(4500);
    const viaProm = await status(["--prometheus", prom.url, "--max-age", "3s"]);
    assert.equal(viaProm.result.code, 1);
    assert.deepEqual(
      verdicts(viaProm.rows),
      { "app-1": "rebooted", "app-2": "converged", "app-3": "unknown" },
      JSON.stringify(viaProm.rows.get("app-3")),
    );
    const dead = viaProm.rows.get("app-3")!;
    assert.equal(dead.reported_id, null);
    assert.match(dead.error!, /^Prometheus finds \S+ down \(up == 0; last sample \d{4}-/);

    const direct = await status(["--max-age", "3s"]);
    assert.equal(direct.rows.get("app-3")!.verdict, "unknown");
    assert.match(direct.rows.get("app-3")!.error!, /ECONNREFUSED/);
    assert.equal(direct.rows.get("app-2")!.verdict, "converged");
  });
});
