// Which keys may resume a rollout staged with `push --waves --stage` (checkStagedResume, pure):
// none before approval or after a discard; after approval, the threshold of distinct trusted keys,
// the stager's first (the rollout's plans are sealed to it). End to end: e2e-staged-resume.test.ts.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { checkStagedResume } from "../../../coordinator/rollout/staged-resume.ts";
import type { StagedChange } from "../../../coordinator/staging.ts";
import { formatTrust, generateAdminKey, parseTrust } from "../../../shared/keys.ts";
import { sodiumReady } from "../../../shared/sodium.ts";
import type { AdminKeyPair, TrustSet } from "../../../shared/types.ts";

describe("checkStagedResume", { timeout: 10_000 }, () => {
  let alice: AdminKeyPair;
  let bob: AdminKeyPair;
  let mallory: AdminKeyPair;
  let trust: TrustSet;
  const change = (state: StagedChange["state"]): StagedChange => ({
    id: 3,
    createdAt: 0,
    expiresAt: 1,
    operator: "alice",
    trust: "",
    signers: [alice.keyId],
    state,
    closedAt: null,
    rolloutId: 7,
  });
  const refusal = (state: StagedChange["state"], keys: AdminKeyPair[]) => {
    try {
      checkStagedResume(7, change(state), trust, keys);
    } catch (e) {
      return `${(e as { reason: string }).reason}: ${(e as Error).message}`;
    }
    return "accepted";
  };

  before(async () => {
    await sodiumReady();
    [alice, bob, mallory] = [generateAdminKey(), generateAdminKey(), generateAdminKey()];
    trust = parseTrust(formatTrust([alice.publicKey, bob.publicKey], 2), "trust");
  });

  it("refuses a rollout not approved yet, naming `fleetplan approve S-n`, even with every key", () => {
    assert.match(
      refusal("staged", [alice, bob]),
      /^conflict: rollout 7 is staged as S-3 and not approved yet.*`fleetplan approve S-3 --admin-key/,
    );
  });

  it("refuses a discarded change's rollout, naming abort", () => {
    assert.match(refusal("discarded", [alice, bob]), /^conflict: .*S-3, which was discarded: abort it \(`fleetplan rollout abort 7`\)/);
  });

  it("after approval, refuses fewer trusted keys than the threshold; a key twice or an untrusted one does not count", () => {
    assert.match(refusal("approved", [alice]), /^invalid_argument: rollout 7 \(S-3\) needs 2 signatures.* 1 trusted --admin-key given/);
    assert.match(refusal("approved", [alice, alice]), /needs 2 signatures/);
    assert.match(refusal("approved", [alice, mallory]), new RegExp(`\\(${mallory.keyId} not in its trust set\\)`));
  });

  it("accepts the threshold of trusted keys, with the stager's key first", () => {
    assert.deepEqual(
      checkStagedResume(7, change("approved"), trust, [bob, alice]).map((k) => k.keyId),
      [alice.keyId, bob.keyId],
    );
  });
});
