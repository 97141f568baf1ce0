// The fuzz loop, shared by bench/fuzz.ts (long runs) and test/shared/fuzz.test.ts (20,000 cases).
// "executed": openEnvelope returned a plan for a mutated input — a security failure.
// "crashed": it threw something other than an EnvelopeError — a robustness failure.
// One in CONTROL_EVERY cases feeds an unmutated valid envelope instead, proving the harness can
// accept at all (a harness that rejects everything would report zero executions too).
import { EnvelopeError, openEnvelope, sodiumReady } from "../shared/mod.ts";
import { buildCorpus } from "./fuzz-corpus.ts";
import { makeRng, MUTATIONS } from "./fuzz-mutations.ts";

export interface FuzzOptions {
  /** Stop after this many mutated inputs… */
  count: number;
  /** …or after this many seconds, whichever comes first. */
  seconds: number;
  seed: number;
}

export interface FuzzResult {
  count: number;
  executed: number;
  crashed: number;
  seconds: number;
  by_reason: Record<string, number>;
  by_mutation: Record<string, number>;
  /** Valid envelopes fed as controls, and how many of them failed to open (must be 0). */
  controls: number;
  control_failures: number;
  /** The first few executed or crashed cases, to reproduce (mutation name, case index, error). */
  failures: { index: number; mutation: string; outcome: string; detail: string }[];
}

const CONTROL_EVERY = 64;
const MAX_FAILURE_SAMPLES = 10;
const MUTATION_NAMES = Object.keys(MUTATIONS);

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

/** Run the mutation loop; deterministic in its choices for a given seed (sealing itself is randomised). */
export const runFuzz = async ({ count, seconds, seed }: FuzzOptions): Promise<FuzzResult> => {
  await sodiumReady();
  const corpus = buildCorpus();
  const rng = makeRng(seed);
  const result: FuzzResult = {
    count: 0,
    executed: 0,
    crashed: 0,
    seconds: 0,
    by_reason: {},
    by_mutation: {},
    controls: 0,
    control_failures: 0,
    failures: [],
  };
  const note = (index: number, mutation: string, outcome: string, detail: string): void => {
    if (result.failures.length < MAX_FAILURE_SAMPLES) result.failures.push({ index, mutation, outcome, detail });
  };
  const started = performance.now();
  const deadline = started + seconds * 1000;

  for (let i = 0; result.count < count; i++) {
    // Checking the clock every case would cost more than the cheapest rejections.
    if (i % 256 === 0 && performance.now() >= deadline) break;
    const base = rng.pick(corpus.valid);
    if (i % CONTROL_EVERY === 0) {
      result.controls++;
      try {
        openEnvelope(base, corpus.open);
      } catch (error) {
        result.control_failures++;
        note(i, "control", "control_failed", String(error));
      }
      continue;
    }
    const mutation = rng.pick(MUTATION_NAMES);
    const input = MUTATIONS[mutation]!(base, corpus, rng);
    // A mutation that happens to rebuild a valid envelope byte for byte is not an attack.
    if (corpus.valid.some((v) => sameBytes(v, input))) continue;
    result.count++;
    result.by_mutation[mutation] = (result.by_mutation[mutation] ?? 0) + 1;
    try {
      openEnvelope(input, corpus.open);
      result.executed++;
      note(i, mutation, "executed", Buffer.from(input.subarray(0, 64)).toString("hex"));
    } catch (error) {
      if (error instanceof EnvelopeError) {
        result.by_reason[error.reason] = (result.by_reason[error.reason] ?? 0) + 1;
      } else {
        result.crashed++;
        note(i, mutation, "crashed", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
    }
  }
  result.seconds = Math.round(performance.now() - started) / 1000;
  return result;
};
