// What push --wait makes of an agent's status: outcomeFromStatus, pure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { outcomeFromStatus } from "../../coordinator/decide.ts";

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

describe("outcomeFromStatus", () => {
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
