// The coordinator's rotation decision (pure): which records `trust rotate` publishes, and every
// refusal naming its fix, including a version 1 in the store that is not the agents' trust file.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { planRotation } from "../../coordinator/trust-chain.ts";
import type { ChainLink } from "../../coordinator/trust-chain.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { generateAdminKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { parseTrustRecord, signTrust, trustDocument, verifyRoot } from "../../shared/trust.ts";
import type { AdminKeyPair, TrustSet } from "../../shared/types.ts";

const setOf = (keys: AdminKeyPair[], threshold = 1): TrustSet => ({ keys: new Map(keys.map((k) => [k.keyId, k.publicKey])), threshold });
const refused = (reason: string, text: RegExp) => (e: unknown) =>
  e instanceof FleetplanError && e.reason === reason && text.test(e.message);
const expires = Date.now() + 3_600_000;

describe("trust rotate: planRotation (pure)", { timeout: 10_000 }, () => {
  let a: AdminKeyPair, b: AdminKeyPair, x: AdminKeyPair;
  before(async () => {
    await sodiumReady();
    [a, b, x] = [generateAdminKey(), generateAdminKey(), generateAdminKey()];
  });
  const base = () => ({
    chain: [] as ChainLink[],
    root: setOf([a]),
    add: [] as Uint8Array[],
    remove: [] as string[],
    threshold: null,
    signers: [a, b],
    expires,
  });

  it("the first rotation publishes the trust file as version 1, then version 2", () => {
    const records = planRotation({ ...base(), add: [b.publicKey], remove: [a.keyId] });
    assert.deepEqual(
      records.map((r) => r.version),
      [1, 2],
    );
    assert.deepEqual([...records[1]!.state.trust.keys.keys()], [b.keyId]);
  });

  it("refuses to build on a version 1 in the store that is not the --root trust file", () => {
    const forged = parseTrustRecord(signTrust(trustDocument(1, [a.publicKey, x.publicKey], 1, expires), [x]));
    const chain = [{ record: forged, state: verifyRoot(forged) }];
    assert.throws(() => planRotation({ ...base(), chain, add: [b.publicKey] }), refused("conflict", /not the --root trust file/));
  });

  it("names the missing signatures, an unknown key to remove, a duplicate key and a threshold too high", () => {
    assert.throws(
      () => planRotation({ ...base(), signers: [a], add: [b.publicKey], remove: [a.keyId] }),
      refused("invalid_argument", /new set.*--admin-key/),
    );
    assert.throws(
      () => planRotation({ ...base(), remove: [x.keyId] }),
      refused("invalid_argument", /--remove: key .* is not in trust version 1/),
    );
    assert.throws(() => planRotation({ ...base(), add: [a.publicKey] }), refused("invalid_argument", /already in the trust set/));
    assert.throws(() => planRotation({ ...base(), add: [b.publicKey], threshold: 3 }), refused("invalid_argument", /--threshold 1 to 2/));
    assert.throws(() => planRotation({ ...base(), remove: [a.keyId] }), refused("invalid_argument", /no admin key/));
  });
});
