import { FleetplanError } from "../../shared/errors.ts";
import type { AdminKeyPair, TrustSet } from "../../shared/types.ts";
import type { StagedChange } from "../staging.ts";
import { stagedName } from "../staging.ts";

// A rollout created by `push --waves ... --stage` answers to the two-person rule: `rollout resume`
// seals new envelopes with the keys it is given, so one admin alone would sign envelopes every
// agent with threshold 2 refuses (untrusted_signer). Pure: the caller reads the change and keys.

/**
 * The keys `rollout resume` of a staged rollout may sign with, the stager's key first (the
 * rollout's plans are sealed to it in the database). Refuses a change not approved yet (naming
 * `fleetplan approve S-n`), a discarded one, and fewer distinct trusted keys than the threshold.
 */
export const checkStagedResume = (
  rolloutId: number,
  change: StagedChange,
  trust: TrustSet,
  keys: readonly AdminKeyPair[],
): AdminKeyPair[] => {
  const name = stagedName(change.id);
  if (change.state === "staged") {
    throw new FleetplanError(
      "conflict",
      `rollout ${rolloutId} is staged as ${name} and not approved yet: a second admin runs ` +
        `\`fleetplan approve ${name} --admin-key OTHER.key\`, which runs it with ${trust.threshold} signatures`,
    );
  }
  if (change.state === "discarded") {
    throw new FleetplanError(
      "conflict",
      `rollout ${rolloutId} was staged as ${name}, which was discarded: abort it (\`fleetplan rollout abort ${rolloutId}\`) and stage again`,
    );
  }
  const distinct = [...new Map(keys.map((k) => [k.keyId, k])).values()];
  const trusted = distinct.filter((k) => trust.keys.has(k.keyId));
  if (trusted.length < trust.threshold) {
    const outside = distinct.filter((k) => !trust.keys.has(k.keyId)).map((k) => k.keyId);
    const untrusted = outside.length > 0 ? ` (${outside.join(", ")} not in its trust set)` : "";
    throw new FleetplanError(
      "invalid_argument",
      `rollout ${rolloutId} (${name}) needs ${trust.threshold} signatures: resume seals new envelopes, and ${trusted.length} ` +
        `trusted --admin-key given${untrusted} would be refused by the agents (untrusted_signer); ` +
        `give ${trust.threshold} admin keys: \`fleetplan rollout resume ${rolloutId} --admin-key A.key --admin-key B.key\``,
    );
  }
  const stager = change.signers[0];
  const first = trusted.find((k) => k.keyId === stager);
  if (first === undefined) {
    throw new FleetplanError(
      "invalid_argument",
      `rollout ${rolloutId} (${name}): its plans are sealed in the coordinator database to the key that staged it ` +
        `(${stager}); give that --admin-key among the ${trust.threshold}`,
    );
  }
  return [first, ...trusted.filter((k) => k !== first)];
};
