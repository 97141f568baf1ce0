// Envelope fuzzer: mutated and hostile envelopes against openEnvelope; nothing may open and
// everything must fail with a coded EnvelopeError. Exits 1 otherwise. Prints one JSON line.
// Run: npx tsx bench/fuzz.ts [--count 1000000] [--seconds 600] [--seed 1]
import { parseArgs } from "node:util";
import { runFuzz } from "./fuzz-core.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "1000000" },
    seconds: { type: "string", default: "600" },
    seed: { type: "string", default: "1" },
  },
});
const count = Number(values.count);
const seconds = Number(values.seconds);
const seed = Number(values.seed);
for (const [name, value] of [
  ["count", count],
  ["seconds", seconds],
  ["seed", seed],
] as const) {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`--${name} must be a non-negative number, got ${values[name]}`);
}

const result = await runFuzz({ count, seconds, seed });
const { failures, ...figures } = result;
console.log(JSON.stringify({ bench: "fuzz", seed, ...figures, cases_per_s: Math.round(result.count / result.seconds) }));
for (const failure of failures) console.error(JSON.stringify(failure));
process.exitCode = result.executed > 0 || result.crashed > 0 || result.control_failures > 0 ? 1 : 0;
