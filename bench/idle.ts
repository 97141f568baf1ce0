// An idle agent's memory and CPU (issue 13 item 3): a real nats-server, a real `fleetplan-agent run`
// (built code) per variant of node flags, started one after another on the same node; after it
// listens, its RSS (/proc/PID/status) and CPU time (/proc/PID/stat, user + system) over --seconds.
// Variants: node's defaults, the systemd unit's ExecStart flags, and each --flags "…" given.
// One JSON line per variant.
// Run: npm run build && npx tsx bench/idle.ts [--seconds 30] [--flags="--max-semi-space-size=1 --lite-mode"]...
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { AGENT_BIN, createNode, createWorld } from "../test/helpers/fleet.ts";
import type { Node } from "../test/helpers/fleet.ts";
import { startNats } from "../test/helpers/nats.ts";
import { waitListening } from "../test/helpers/ports.ts";
import { initStoreLayout } from "../test/helpers/store-layout.ts";
import { cpuOf, memoryOf } from "./proc.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "30" }, flags: { type: "string", multiple: true, default: [] } },
});
const seconds = Number(values.seconds);
if (!(seconds > 0)) {
  console.error('usage: bench/idle.ts [--seconds 30] [--flags="--node-flag ..."]...   (--seconds: a positive number)');
  process.exit(2);
}
/** The node flags of the systemd unit's ExecStart, between node and the bin. */
const unitNodeFlags = (): string => {
  const unit = readFileSync(new URL("../systemd/fleetplan-agent.service", import.meta.url), "utf8");
  return /^ExecStart=\S*node((?: --\S+)*) \S*fleetplan-agent /m.exec(unit)?.[1]?.trim() ?? "";
};

const idleAgent = async (node: Node, flags: string, source: string) => {
  const child = spawn(process.execPath, [...flags.split(" ").filter(Boolean), AGENT_BIN, "run", "--config", node.configPath], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  let log = "";
  child.stderr.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await Promise.race([
      waitListening(node.metricsPort, 30_000, "fleetplan-agent run"),
      exited.then((code) => Promise.reject(new Error(`fleetplan-agent run exited ${code}: ${log}`))),
    ]);
    await sleep(1_000); // the start's own work (status put, first read) done
    const cpu0 = cpuOf(child.pid!);
    await sleep(seconds * 1000);
    const cpuS = cpuOf(child.pid!) - cpu0;
    console.log(
      JSON.stringify({
        bench: "idle",
        node_flags: flags,
        source,
        idle_s: seconds,
        ...memoryOf(child.pid!),
        cpu_ms: Math.round(cpuS * 1000),
        cpu_percent: Math.round((cpuS / seconds) * 10_000) / 100,
      }),
    );
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
};

const nats = await startNats();
const world = await createWorld("fleetplan-idle-");
try {
  const node = await createNode(world, "idle-1", nats.url);
  await initStoreLayout(nats.url);
  await idleAgent(node, "", "node defaults");
  await idleAgent(node, unitNodeFlags(), "systemd/fleetplan-agent.service");
  for (const flags of values.flags) await idleAgent(node, flags, "--flags");
} finally {
  await nats.stop();
  world.cleanup();
}
