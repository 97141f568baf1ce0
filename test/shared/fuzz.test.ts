// 20,000 fuzzed envelopes (bench/fuzz.ts runs a million): none opens, none throws uncoded, and
// the mutations reach every step of the verification order, not just the framing checks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runFuzz } from "../../bench/fuzz-core.ts";

describe("envelope fuzzing", () => {
  it("20,000 mutations: nothing executes, nothing crashes", async () => {
    const result = await runFuzz({ count: 20_000, seconds: 120, seed: 20_000 });
    assert.deepEqual(result.failures, []);
    assert.equal(result.count, 20_000, `stopped by the time limit after ${result.count}`);
    assert.equal(result.executed, 0);
    assert.equal(result.crashed, 0);
    assert.ok(result.controls > 0);
    assert.equal(result.control_failures, 0);
    const reasons = Object.keys(result.by_reason);
    assert.ok(reasons.length >= 10, `only ${reasons.join(", ")}`);
    // Signed-but-wrong inputs get past the signature step and are stopped by the later ones.
    for (const late of ["wrong_target", "expired", "stale", "decrypt_failed", "decompress_failed", "hash_mismatch", "invalid_plan"]) {
      assert.ok(reasons.includes(late), `no case reached ${late}: ${JSON.stringify(result.by_reason)}`);
    }
  });
});
