// Honest envelopes open to exactly what was sealed, from an empty file to half the plan limit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blake2bHex, DEFAULT_LIMITS, planBytes } from "../../shared/mod.ts";
import { ADMIN, HWM_ID, HOST, NODE, open, samplePlan, seal } from "./fixtures.ts";

/** Base64 content that makes the plan's canonical bytes about `size` bytes long. */
const contentOfPlanSize = (size: number): string => {
  const raw = Buffer.alloc(Math.floor((size * 3) / 4));
  // Varied bytes, so zstd has real work to do rather than a run of zeros.
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return raw.toString("base64");
};

describe("envelope round trip", () => {
  for (const [label, size] of [
    ["0 B", 0],
    ["4 KiB", 4096],
    ["1 MiB", 1 << 20],
    ["16 MiB", 16 << 20],
  ] as const) {
    it(`opens a plan with ${label} of file content to the same bytes`, () => {
      const plan = samplePlan(contentOfPlanSize(size));
      const bytes = planBytes(plan);
      assert.ok(bytes.length <= DEFAULT_LIMITS.maxPlanBytes);
      const opened = open(seal(plan));
      // The header's hash was checked against the decompressed bytes: equal hashes, equal bytes.
      assert.equal(opened.header.plan_hash, blake2bHex(bytes));
      assert.deepEqual(Buffer.from(planBytes(opened.plan)), Buffer.from(bytes));
      assert.equal(opened.plan.files[0]!.content, plan.files[0]!.content);
      assert.deepEqual(opened.plan.steps, plan.steps);
      assert.deepEqual(opened.signerIds, [ADMIN.keyId]);
      assert.equal(opened.header.id, HWM_ID + 1);
      assert.equal(opened.header.target, HOST);
      assert.equal(opened.header.recipient, NODE.keyId);
      assert.equal(opened.header.plan_size, bytes.length);
      assert.equal(opened.header.plan_hash, blake2bHex(bytes));
    });
  }

  it("opens a plan whose id and target match the header", () => {
    const plan = { ...samplePlan(), id: HWM_ID + 1, target: HOST };
    assert.equal(open(seal(plan)).plan.id, HWM_ID + 1);
  });

  it("opens a plain shell script plan with no files", () => {
    const opened = open(seal({ kind: "fleetplan/plan", v: 1, files: [], steps: [{ name: "script", run: "echo hi" }] }));
    assert.equal(opened.plan.steps[0]!.run, "echo hi");
  });

  it("opens envelopes of changing sizes in turn: buffers reused between opens carry nothing over", () => {
    // Large, small, just under and over the reuse limit (64 KiB), then small again.
    const sizes = [60_000, 200, 65_000, 70_000, 4096, 0];
    const plans = sizes.map((size) => samplePlan(contentOfPlanSize(size)));
    const envelopes = plans.map((plan) => seal(plan));
    for (let round = 0; round < 2; round++) {
      envelopes.forEach((envelope, i) => {
        const opened = open(envelope);
        assert.deepEqual(Buffer.from(planBytes(opened.plan)), Buffer.from(planBytes(plans[i]!)), `plan ${i}, round ${round}`);
      });
    }
  });
});
