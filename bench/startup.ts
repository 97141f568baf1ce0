// Startup: `fleetplan --help` and `fleetplan-agent --version` against `node -e 0` (median of --runs
// runs, interleaved so machine noise hits all alike), and an idle agent's memory: a real
// `fleetplan-agent run` against a real nats-server, /proc/PID/status read after --idle seconds,
// once with node's defaults and once with the node flags of the systemd unit's ExecStart.
// Prints one JSON line per figure. Needs a fresh build (npm run build).
// Run: npx tsx bench/startup.ts [--runs 21] [--idle 5]
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { distProblem } from "../shared/built.mjs";
import { PACKAGE_ROOT } from "../shared/version.ts";
import { AGENT_BIN, CLI_BIN, createNode, createWorld } from "../test/helpers/fleet.ts";
import type { Node } from "../test/helpers/fleet.ts";
import { startNats } from "../test/helpers/nats.ts";
import { waitListening } from "../test/helpers/ports.ts";
import { initStoreLayout } from "../test/helpers/store-layout.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "21" }, idle: { type: "string", default: "5" } } });
const [runs, idle] = [Number(values.runs), Number(values.idle)];
for (const [name, value] of [
  ["runs", runs],
  ["idle", idle],
] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer, got "${values[name]}" (e.g. --${name} ${name === "runs" ? 21 : 5})`);
    process.exit(2);
  }
}
const problem = distProblem("agent/cli/main.js") ?? distProblem("coordinator/cli/main.js");
if (problem !== undefined) {
  console.error(problem);
  process.exit(2);
}

const report = (figure: Record<string, unknown>) => console.log(JSON.stringify({ bench: "startup", ...figure }));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const commands: Array<[name: string, args: string[]]> = [
  ["node -e 0", ["-e", "0"]],
  ["fleetplan --help", [CLI_BIN, "--help"]],
  ["fleetplan-agent --version", [AGENT_BIN, "--version"]],
];
const times = commands.map((): number[] => []);
for (let i = 0; i < runs; i++) {
  commands.forEach(([name, args], c) => {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } });
    times[c]!.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}: ${r.stderr}`);
  });
}
const base = median(times[0]!);
commands.forEach(([name], c) => {
  const ms = median(times[c]!);
  report({ cmd: name, runs, median_ms: Math.round(ms * 10) / 10, ...(c > 0 && { ratio: Math.round((ms / base) * 100) / 100 }) });
});

// /proc/PID/status fields in kB, as MB.
const memoryOf = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const mb = (field: string) =>
    Math.round(Number(/(\d+) kB/.exec(status.split("\n").find((l) => l.startsWith(`${field}:`)) ?? "")?.[1]) / 102.4) / 10;
  return { rss_mb: mb("VmRSS"), hwm_mb: mb("VmHWM"), rss_anon_mb: mb("RssAnon"), rss_file_mb: mb("RssFile") };
};

// The node arguments between /usr/bin/node and the bin in the unit's ExecStart, e.g. ["--max-semi-space-size=1"].
const unitNodeFlags = (): string[] => {
  const unit = readFileSync(`${PACKAGE_ROOT}/systemd/fleetplan-agent.service`, "utf8");
  const exec = /^ExecStart=\S*node((?: --\S+)*) \S*fleetplan-agent /m.exec(unit);
  return exec ? exec[1]!.trim().split(" ").filter(Boolean) : [];
};

// One `fleetplan-agent run` with these node flags: its memory after `idle` seconds of listening.
const idleAgent = async (node: Node, flags: string[]) => {
  const child = spawn(process.execPath, [...flags, AGENT_BIN, "run", "--config", node.configPath], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  let log = "";
  child.stderr.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await Promise.race([
      waitListening(node.metricsPort, 20_000, "fleetplan-agent run"),
      exited.then((code) => Promise.reject(new Error(`fleetplan-agent run exited ${code}: ${log}`))),
    ]);
    await sleep(idle * 1000);
    report({ what: "agent idle", node_flags: flags.join(" "), idle_s: idle, ...memoryOf(child.pid!) });
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
};

const nats = await startNats();
const world = await createWorld("fleetplan-startup-");
try {
  const node = await createNode(world, "idle-1", nats.url);
  await initStoreLayout(nats.url);
  await idleAgent(node, []);
  await idleAgent(node, unitNodeFlags());
} finally {
  await nats.stop();
  world.cleanup();
}
