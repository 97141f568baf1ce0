// Trust rotation (TUF root rotation) and freshness records, pure: one test per attack, each asserting
// the reason code and that nothing was adopted.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { FleetplanError } from "../../shared/errors.ts";
import { signFreshness, verifyFreshness } from "../../shared/freshness.ts";
import { generateAdminKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { parseTrustRecord, rootState, signTrust, trustDocument, verifyRotation, walkChain } from "../../shared/trust.ts";
import type { TrustState } from "../../shared/trust.ts";
import type { AdminKeyPair, TrustSet } from "../../shared/types.ts";

const HOUR = 3_600_000;
const now = Date.now();
const setOf = (keys: AdminKeyPair[], threshold = 1): TrustSet => ({ keys: new Map(keys.map((k) => [k.keyId, k.publicKey])), threshold });
const record = (version: number, keys: AdminKeyPair[], threshold: number, signers: AdminKeyPair[], expires = now + HOUR) =>
  parseTrustRecord(
    signTrust(
      trustDocument(
        version,
        keys.map((k) => k.publicKey),
        threshold,
        expires,
      ),
      signers,
    ),
  );
const reason = (r: string) => (e: unknown) => e instanceof FleetplanError && e.reason === r;

describe("trust rotation (pure)", { timeout: 10_000 }, () => {
  let a: AdminKeyPair, b: AdminKeyPair, c: AdminKeyPair;
  let root: TrustState;
  before(async () => {
    await sodiumReady();
    [a, b, c] = [generateAdminKey(), generateAdminKey(), generateAdminKey()];
    root = rootState(setOf([a]));
  });

  it("accepts version 2 signed by the threshold of the current set and of the new set", () => {
    const next = verifyRotation(root, record(2, [b], 1, [a, b]));
    assert.equal(next.version, 2);
    assert.deepEqual([...next.trust.keys.keys()], [b.keyId]);
  });

  it("refuses a rotation signed only by the current set (the new key did not sign)", () => {
    assert.throws(() => verifyRotation(root, record(2, [b], 1, [a])), reason("untrusted_signer"));
  });

  it("refuses a rotation signed only by the new set (a thief cannot enrol his own key)", () => {
    assert.throws(() => verifyRotation(root, record(2, [b], 1, [b])), reason("untrusted_signer"));
  });

  it("refuses a version skip and a replayed older version", () => {
    assert.throws(() => verifyRotation(root, record(3, [b], 1, [a, b])), reason("trust_version"));
    const two = verifyRotation(root, record(2, [a, b], 2, [a, b]));
    assert.throws(() => verifyRotation(two, record(2, [a, b], 2, [a, b])), reason("trust_version"));
  });

  it("counts a k-of-n threshold on both sides: 2-of-{a,b} to 2-of-{b,c} needs a+b and b+c", () => {
    const two = verifyRotation(root, record(2, [a, b], 2, [a, b]));
    assert.throws(() => verifyRotation(two, record(3, [b, c], 2, [b, c])), reason("untrusted_signer"));
    assert.throws(() => verifyRotation(two, record(3, [b, c], 2, [a, b])), reason("untrusted_signer"));
    assert.equal(verifyRotation(two, record(3, [b, c], 2, [a, b, c])).version, 3);
  });

  it("walks a chain after being offline, through an expired intermediate version", () => {
    const chain = [record(2, [b], 1, [a, b], now - HOUR), record(3, [c], 1, [b, c])];
    const reached = walkChain(root, chain, now);
    assert.deepEqual(
      reached.map((s) => s.version),
      [2, 3],
    );
    assert.deepEqual([...reached[1]!.trust.keys.keys()], [c.keyId]);
  });

  it("adopts nothing when the newest version has expired, or a link in the middle is forged", () => {
    assert.throws(() => walkChain(root, [record(2, [b], 1, [a, b], now - 1)], now), reason("trust_expired"));
    assert.throws(() => walkChain(root, [record(2, [b], 1, [a, b]), record(3, [c], 1, [c])], now), reason("untrusted_signer"));
  });

  it("refuses a malformed record with bad_trust, never a SyntaxError", () => {
    assert.throws(() => parseTrustRecord(new TextEncoder().encode("{")), reason("bad_trust"));
    const doc = JSON.parse(new TextDecoder().decode(signTrust(trustDocument(2, [b.publicKey], 2, now), [a])));
    assert.throws(() => parseTrustRecord(new TextEncoder().encode(JSON.stringify(doc))), reason("bad_trust"));
  });
});

describe("freshness records (pure)", { timeout: 10_000 }, () => {
  let a: AdminKeyPair, b: AdminKeyPair;
  before(async () => {
    await sodiumReady();
    [a, b] = [generateAdminKey(), generateAdminKey()];
  });
  const fresh = { host: "web-1", latest_id: 7, issued: now, expires: now + HOUR };
  const opts = () => ({ host: "web-1", trust: setOf([a]), now, skewMs: 300_000 });

  it("verifies a record signed by the trust set for this host", () => {
    assert.deepEqual(verifyFreshness(signFreshness(fresh, [a]), opts()), fresh);
  });

  it("refuses a record signed by another key, for another host, or from the future", () => {
    assert.throws(() => verifyFreshness(signFreshness(fresh, [b]), opts()), reason("untrusted_signer"));
    assert.throws(() => verifyFreshness(signFreshness({ ...fresh, host: "web-2" }, [a]), opts()), reason("wrong_target"));
    assert.throws(() => verifyFreshness(signFreshness({ ...fresh, issued: now + HOUR }, [a]), opts()), reason("from_future"));
  });

  it("a trust-document signature does not verify as a freshness record (distinct domains)", () => {
    const trust = JSON.parse(new TextDecoder().decode(signTrust(trustDocument(2, [a.publicKey], 1, now), [a])));
    const forged = JSON.parse(new TextDecoder().decode(signFreshness(fresh, [a])));
    forged.sigs = trust.sigs;
    assert.throws(() => verifyFreshness(new TextEncoder().encode(JSON.stringify(forged)), opts()), reason("untrusted_signer"));
  });
});
