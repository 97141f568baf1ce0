// Load: N in-process agents on one nats-server receive M pushes in a row; prints one JSON line
// per phase (start, put, cleanup, converge) and exits 1 if any agent ran an id twice or an older id after a
// newer one, or had not applied the last pushed id by the deadline (--timeout, in seconds; stopping
// everything afterwards takes at most CLEANUP_MS more).
// Run: npx tsx bench/load.ts [--agents 200] [--pushes 10] [--timeout 240]
import { parseArgs } from "node:util";
import { runLoad } from "./load-core.ts";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "200" },
    pushes: { type: "string", default: "10" },
    timeout: { type: "string", default: "240" },
  },
});
const [agents, pushes, timeout] = [Number(values.agents), Number(values.pushes), Number(values.timeout)];
for (const [name, value] of [
  ["agents", agents],
  ["pushes", pushes],
  ["timeout", timeout],
] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer, got "${values[name]}" (e.g. --${name} ${name === "timeout" ? 240 : 10})`);
    process.exit(2);
  }
}

const report = (figure: Record<string, unknown>) => console.log(JSON.stringify({ bench: "load", ...figure }));
const result = await runLoad({ agents, pushes, deadlineMs: timeout * 1000, report });
for (const problem of result.problems) console.error(problem);
process.exitCode = result.problems.length > 0 ? 1 : 0;
// Anything cleanup could not close (a store connection reconnecting forever) must not hold the
// process: name it and exit. Unref'd, so a clean exit is not delayed.
setTimeout(() => {
  console.error(`bench/load.ts: still running 10 s after the end, held by ${process.getActiveResourcesInfo().join(", ")}; exiting`);
  process.exit(1);
}, 10_000).unref();
