// What push decides per target (decideTarget, targetStates) and what push --wait makes of an agent's status
// (outcomeFromStatus), pure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decideTarget, outcomeFromStatus, targetStates } from "../../coordinator/decide.ts";

const PUSHED = 20250307090501;
const PUT_AT = 1_700_000_000_000;
const status = (fields: Partial<Parameters<typeof outcomeFromStatus>[2]>) => ({
  state: "idle",
  id: null,
  applied_id: null,
  result: null,
  since: PUT_AT,
  ...fields,
});

describe("outcomeFromStatus", { timeout: 5_000 }, () => {
  it("an id-less rejection published at or after the put rejects it with that reason", () => {
    assert.deepEqual(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "rejected", result: "untrusted_signer" })), {
      outcome: "rejected",
      reason: "untrusted_signer",
    });
    assert.deepEqual(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "rejected", result: "bad_signature", since: PUT_AT + 900 })), {
      outcome: "rejected",
      reason: "bad_signature",
    });
  });

  it("an id-less rejection from before the put, or another id-less state, leaves it in flight", () => {
    assert.equal(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "rejected", result: "malformed", since: PUT_AT - 1 })), null);
    assert.equal(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "idle", since: PUT_AT + 5 })), null);
  });

  it("verified states of the pushed id decide as before", () => {
    assert.deepEqual(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "rejected", id: PUSHED, result: "expired" })), {
      outcome: "rejected",
      reason: "expired",
    });
    assert.equal(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "rejected", id: PUSHED, result: "duplicate" })), null);
    assert.deepEqual(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "idle", applied_id: PUSHED })), {
      outcome: "succeeded",
      reason: null,
    });
    assert.deepEqual(outcomeFromStatus(PUSHED, PUT_AT, status({ state: "running", id: PUSHED + 1 })), {
      outcome: "superseded",
      reason: `a newer id ${PUSHED + 1} arrived`,
    });
  });
});

describe("decideTarget", { timeout: 5_000 }, () => {
  const expected = { id: PUSHED, planHash: "aa".repeat(32), issuedAt: PUT_AT };
  const same = expected.planHash;

  it("a drifted host on the same plan is pushed as `drifted`, not `not_converged`", () => {
    assert.deepEqual(decideTarget(same, expected, false, false, true), { action: "push", reason: "drifted" });
    assert.deepEqual(decideTarget(same, expected, false, false), { action: "push", reason: "not_converged" });
  });

  it("a changed plan, a new host and --force keep their reasons, drifted or not", () => {
    assert.deepEqual(decideTarget("bb".repeat(32), expected, false, false, true), { action: "push", reason: "changed" });
    assert.deepEqual(decideTarget(same, undefined, false, false, true), { action: "push", reason: "new" });
    assert.deepEqual(decideTarget(same, expected, true, true, true), { action: "push", reason: "forced" });
    assert.deepEqual(decideTarget(same, expected, true, false), { action: "skip", reason: "converged" });
  });

  it("targetStates sorts status verdicts into converged and drifted hosts; a plain set means none drifted", () => {
    const rows = [
      { host: "web-1", verdict: "converged" },
      { host: "web-2", verdict: "drifted" },
      { host: "web-3", verdict: "rebooted" },
    ];
    const states = targetStates(rows);
    assert.deepEqual([[...states.converged], [...states.drifted]], [["web-1"], ["web-2"]]);
    const plain = targetStates(new Set(["web-1"]));
    assert.deepEqual([[...plain.converged], [...plain.drifted]], [["web-1"], []]);
  });
});
