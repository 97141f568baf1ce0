// One agent's put → run start, by stage (issue 13 item 3): a real nats-server, one real
// `fleetplan-agent run` process (built code), --runs envelopes put one after another, each a
// one-step plan whose step records when it started. Stages from the agent's own log times (ms):
// put acknowledged → envelope_accepted (notice, direct get, verify, decrypt, ledger accept with its
// fsync) → run_started (the run's start in the ledger) → the step's first command (status put,
// executor, bash spawn). `--cpu-prof DIR` writes the agent's CPU profile there. One JSON line per figure.
// Run: npm run build && npx tsx bench/agent-path.ts [--runs 30] [--cpu-prof DIR]
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { STORE_DEFAULTS } from "../shared/store-config.ts";
import { AGENT_BIN, createNode, createWorld, sealFor } from "../test/helpers/fleet.ts";
import { startNats } from "../test/helpers/nats.ts";
import { initStoreLayout } from "../test/helpers/store-layout.ts";
import { cpuOf } from "./proc.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "30" }, "cpu-prof": { type: "string" } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error("usage: bench/agent-path.ts [--runs 30] [--cpu-prof DIR]   (--runs: a positive integer)");
  process.exit(2);
}
const emit = (figure: Record<string, unknown>) => console.log(JSON.stringify({ bench: "agent-path", runs, ...figure }));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const round = (x: number) => Math.round(x * 10) / 10;
/** The provisioning id of a UTC time (YYYYMMDDHHMMSS). */
const idAt = (ms: number) => Number(new Date(ms).toISOString().replace(/\D/g, "").slice(0, 14));

const world = await createWorld("fleetplan-agent-path-");
const nats = await startNats();
try {
  await initStoreLayout(nats.url);
  const node = await createNode(world, "path-1", nats.url);
  // Spawned here, not through the test helper: --cpu-prof is not allowed in NODE_OPTIONS.
  const flags = values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : [];
  const child = spawn("node", [...flags, AGENT_BIN, "run", "--config", node.configPath], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const agent = {
    log: () => log,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
  for (let t = Date.now(); !log.includes('"agent_started"'); await sleep(10)) {
    if (Date.now() - t > 20_000 || child.exitCode !== null) throw new Error(`the agent did not start: ${log}`);
  }
  const nc = await connect({ servers: nats.url });
  const kv = await new Kvm(nc).open(STORE_DEFAULTS.planBucket);
  const marker = join(node.root, "started");
  const logTime = (event: string, id: number): number => {
    const line = agent
      .log()
      .split("\n")
      .find((l) => l.includes(`"event":"${event}"`) && l.includes(`"id":${id}`));
    if (!line) throw new Error(`no ${event} for id ${id} in the agent's log`);
    return Date.parse((JSON.parse(line) as { ts: string }).ts);
  };
  const stages = { accepted: [] as number[], run_started: [] as number[], step_started: [] as number[], total: [] as number[] };
  const firstId = idAt(Date.now() - 3_600_000);
  let cpu0 = 0;
  for (let k = 0; k <= runs; k++) {
    if (k === 1) cpu0 = cpuOf(child.pid!, { children: true });
    rmSync(marker, { force: true });
    const id = firstId + k;
    const envelope = sealFor(world, node, id, `date +%s%N > ${marker}\n`);
    await kv.put(node.host, envelope);
    const putAt = Date.now();
    while (!existsSync(marker) || readFileSync(marker, "utf8").length === 0) await sleep(2);
    const stepAt = Number(readFileSync(marker, "utf8")) / 1e6;
    await sleep(50); // the run's end, so runs do not overlap
    if (k === 0) {
      emit({ figure: "put_to_run_start_first_run_ms", value: round(stepAt - putAt), note: "loads what the agent imports lazily" });
      continue;
    }
    const accepted = logTime("envelope_accepted", id);
    const started = logTime("run_started", id);
    stages.accepted.push(accepted - putAt);
    stages.run_started.push(started - accepted);
    stages.step_started.push(stepAt - started);
    stages.total.push(stepAt - putAt);
  }
  emit({
    figure: "cpu_per_run_ms",
    value: round(((cpuOf(child.pid!, { children: true }) - cpu0) / runs) * 1000),
    note: "the agent and its step, from put to the run's end (runs 2 to N+1)",
  });
  for (const [stage, xs] of Object.entries(stages)) {
    emit({ figure: `put_to_run_start_${stage}_ms`, p50: round(pct(xs, 0.5)), p90: round(pct(xs, 0.9)), max: round(Math.max(...xs)) });
  }
  await nc.close();
  await agent.stop();
} finally {
  await nats.stop();
  world.cleanup();
}
