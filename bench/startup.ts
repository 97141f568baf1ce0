// Startup: `fleetplan --help` and `fleetplan-agent --version` against `node -e 0` (median of --runs
// runs, interleaved so machine noise hits all alike). An idle agent's memory and CPU: bench/idle.ts.
// Prints one JSON line per figure. Needs a fresh build (npm run build).
// Run: npx tsx bench/startup.ts [--runs 21]
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { distProblem } from "../shared/built.mjs";
import { AGENT_BIN, CLI_BIN } from "../test/helpers/fleet.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "21" } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs must be a positive integer, got "${values.runs}" (e.g. --runs 21)`);
  process.exit(2);
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
