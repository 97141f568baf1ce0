// Bus against SSH (issue 13 item 4): a real nats-server and M real `fleetplan-agent run`
// processes; a no-op plan pushed with `fleetplan push --all --wait`, timed from the start of the
// command; then, in the same run, the same plan to the same number of targets through OpenSSH
// (a real sshd on loopback, `bash -s` fed the plan), 10-parallel and sequential. Also put → run
// start per agent (the put's acknowledgement as `push --json` reports it, to the first step's
// start as the step itself records it). One JSON line per figure.
// Run: npx tsx bench/fleet.ts [--agents 100] [--pushes 3]
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { mapLimit } from "../shared/pool.ts";
import { CLI_BIN, createCli, initWithServers } from "../test/helpers/cli.ts";
import { createNode, createWorld, startAgentProcess } from "../test/helpers/fleet.ts";
import type { AgentProcess, Node } from "../test/helpers/fleet.ts";
import { startNats } from "../test/helpers/nats.ts";
import { startSshd } from "../test/helpers/sshd.ts";
import { initStoreLayout } from "../test/helpers/store-layout.ts";
import { cpuOf } from "./proc.ts";

const { values } = parseArgs({ options: { agents: { type: "string", default: "100" }, pushes: { type: "string", default: "3" } } });
const agents = Number(values.agents);
const pushes = Number(values.pushes);
if (!Number.isInteger(agents) || agents < 1 || !Number.isInteger(pushes) || pushes < 1) {
  console.error("usage: bench/fleet.ts [--agents 100] [--pushes 3]");
  process.exit(2);
}
const emit = (figure: Record<string, unknown>) => console.log(JSON.stringify({ bench: "fleet", agents, ...figure }));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const round2 = (x: number) => Math.round(x * 100) / 100;
const nowMs = () => performance.timeOrigin + performance.now();

const world = await createWorld("fleetplan-fleet-bench-");
const nats = await startNats();
const sshd = await startSshd();
const procs: AgentProcess[] = [];
try {
  await initStoreLayout(nats.url);
  const nodes: Node[] = [];
  for (let i = 0; i < agents; i++) nodes.push(await createNode(world, `fleet-${i}`, nats.url));
  const started = Date.now();
  // Started a few at a time: each is a Node.js process loading its code on 2 cores.
  await mapLimit(nodes, 8, async (node) => void procs.push(await startAgentProcess(node)));
  emit({ figure: "agents_started_s", value: (Date.now() - started) / 1000 });
  const cli = createCli(world, nats.url);
  await initWithServers(cli, nodes);

  // The no-op plan, one file per host: its step records when it started (ms), for put → run start.
  const plans = join(world.dir, "plans");
  mkdirSync(plans, { recursive: true });
  const stepStart = (node: Node) => join(node.root, "started");
  const writePlans = (marker: string) => {
    for (const node of nodes) writeFileSync(join(plans, `${node.host}.sh`), `date +%s%3N > ${stepStart(node)}\n: ${marker}\n`);
  };

  const pushOnce = () =>
    new Promise<{ ms: number; putAt: Map<string, number>; code: number | null }>((resolve) => {
      const putAt = new Map<string, number>();
      const t0 = nowMs();
      const child = spawn("node", [CLI_BIN, "push", "--plans", plans, "--all", "--wait", "--timeout", "5m", "--json"], {
        env: { ...process.env, ...cli.env },
        stdio: ["ignore", "pipe", "inherit"],
      });
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const e = JSON.parse(line) as { event?: string; host?: string };
        if (e.event === "put" && e.host) putAt.set(e.host, nowMs());
      });
      child.once("exit", (code) => resolve({ ms: nowMs() - t0, putAt, code }));
    });

  writePlans("warm-up");
  await pushOnce();
  const pushMs: number[] = [];
  const runStart: number[] = [];
  // CPU seconds per push: every agent (its steps included), the CLI (this process's child, waited for), nats-server.
  const cpuNow = () => ({
    agents: procs.reduce((sum, p) => sum + cpuOf(p.child.pid!, { children: true }), 0),
    cli: cpuOf("self", { children: true }) - cpuOf("self"),
    nats_server: cpuOf(nats.pid()),
  });
  const cpuUsed: ReturnType<typeof cpuNow>[] = [];
  for (let p = 0; p < pushes; p++) {
    writePlans(`push ${p}`); // changed each time: no target is skipped as converged
    const cpu0 = cpuNow();
    const r = await pushOnce();
    const cpu1 = cpuNow();
    if (r.code !== 0) throw new Error(`push ${p} exited ${r.code}`);
    pushMs.push(r.ms);
    cpuUsed.push({ agents: cpu1.agents - cpu0.agents, cli: cpu1.cli - cpu0.cli, nats_server: cpu1.nats_server - cpu0.nats_server });
    for (const node of nodes) runStart.push(Number(readFileSync(stepStart(node), "utf8")) - r.putAt.get(node.host)!);
  }
  emit({ figure: "push_wait_ms_median", value: Math.round(median(pushMs)), runs: pushMs.map(Math.round) });
  const cpuMedian = (key: keyof (typeof cpuUsed)[0]) => median(cpuUsed.map((c) => c[key]));
  const cpuTotal = cpuMedian("agents") + cpuMedian("cli") + cpuMedian("nats_server");
  emit({
    figure: "push_cpu_s_median",
    all_agents: round2(cpuMedian("agents")),
    per_agent_ms: Math.round((cpuMedian("agents") / agents) * 1000),
    cli: round2(cpuMedian("cli")),
    nats_server: round2(cpuMedian("nats_server")),
    cores: availableParallelism(),
    cpu_floor_ms: Math.round((cpuTotal / availableParallelism()) * 1000),
    note: "the least time the push can take on these cores, with its work shared perfectly",
  });
  emit({ figure: "put_to_run_start_ms_p50", value: Math.round(pct(runStart, 0.5)) });
  emit({ figure: "put_to_run_start_ms_p99", value: Math.round(pct(runStart, 0.99)) });

  // The same plan over OpenSSH: `bash -s` on the target fed the plan, as an operator's loop would.
  const script = readFileSync(join(plans, `${nodes[0]!.host}.sh`));
  const ssh = () =>
    new Promise<void>((resolve, reject) => {
      const child = spawn("ssh", ["-F", sshd.clientConfig, "-p", String(sshd.port), "root@127.0.0.1", "bash", "-s"], {
        stdio: ["pipe", "ignore", "inherit"],
      });
      child.stdin!.end(script);
      child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`ssh exited ${code}`))));
    });
  const viaSsh = async (parallel: number) => {
    const t0 = nowMs();
    await mapLimit(nodes, parallel, ssh);
    return nowMs() - t0;
  };
  const ssh10 = await viaSsh(10);
  emit({ figure: "ssh_10_parallel_ms", value: Math.round(ssh10) });
  const ssh1 = await viaSsh(1);
  emit({ figure: "ssh_sequential_ms", value: Math.round(ssh1) });
  emit({ figure: "speedup_vs_ssh_10_parallel", value: Math.round((ssh10 / median(pushMs)) * 10) / 10 });
  emit({ figure: "speedup_vs_ssh_sequential", value: Math.round((ssh1 / median(pushMs)) * 10) / 10 });
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  await sshd.stop();
  await nats.stop();
  world.cleanup();
}
