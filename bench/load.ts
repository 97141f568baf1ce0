// Load: N in-process agents on one nats-server receive M pushes in a row; prints one JSON line
// per phase (start, put, converge) and exits 1 if any ledger shows a missed, repeated or
// out-of-order run.
// Run: npx tsx bench/load.ts [--agents 200] [--pushes 10] [--timeout 120]
import { parseArgs } from "node:util";
import { runLoad } from "./load-core.ts";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "200" },
    pushes: { type: "string", default: "10" },
    timeout: { type: "string", default: "120" },
  },
});
const [agents, pushes, timeout] = [Number(values.agents), Number(values.pushes), Number(values.timeout)];
for (const [name, value] of [["agents", agents], ["pushes", pushes], ["timeout", timeout]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} must be a positive integer, got ${values[name]}`);
}

const result = await runLoad({ agents, pushes, timeoutMs: timeout * 1000, report: (f) => console.log(JSON.stringify({ bench: "load", ...f })) });
for (const problem of result.problems) console.error(problem);
process.exitCode = result.problems.length > 0 ? 1 : 0;
