// The two-person rule's decisions, pure (coordinator/staging.ts): a second signature over the same
// signed bytes opens on an agent with threshold 2; one admin cannot approve alone; a tampered,
// expired or overtaken staged change is refused with the fix; names and per-host changes.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { openEnvelope, sealEnvelope, verifySignatures, parseEnvelope } from "../../shared/envelope.ts";
import { generateAdminKey, generateNodeKey } from "../../shared/keys.ts";
import { planFromScript } from "../../shared/plan.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AdminKeyPair, NodeKeyPair, TrustSet } from "../../shared/types.ts";
import {
  addSignature,
  changeText,
  checkApprovable,
  checkIntact,
  describeChange,
  newSigners,
  parseStagedName,
  stagedName,
} from "../../coordinator/staging.ts";
import type { StagedChange, StagedEnvelope } from "../../coordinator/staging.ts";

const ID = 20261205120000;
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);

describe("two-person rule decisions", { timeout: 20_000 }, () => {
  let a: AdminKeyPair;
  let b: AdminKeyPair;
  let stranger: AdminKeyPair;
  let node: NodeKeyPair;
  let trust: TrustSet;
  let staged: StagedEnvelope;
  let change: StagedChange;

  before(async () => {
    await sodiumReady();
    [a, b, stranger] = [generateAdminKey(), generateAdminKey(), generateAdminKey()];
    node = generateNodeKey();
    trust = {
      keys: new Map([
        [a.keyId, a.publicKey],
        [b.keyId, b.publicKey],
      ]),
      threshold: 2,
    };
    const envelope = sealEnvelope(planFromScript("echo hi"), {
      id: ID,
      target: "web-1",
      nodePublicKey: node.publicKey,
      signers: [a],
      issued: NOW,
      expires: NOW + 3_600_000,
    });
    staged = {
      host: "web-1",
      id: ID,
      planHash: parseEnvelope(envelope).header.plan_hash,
      prevId: null,
      prevHash: null,
      via: "store",
      envelope,
    };
    change = {
      id: 3,
      createdAt: NOW,
      expiresAt: NOW + 3_600_000,
      operator: "alice",
      trust: "",
      signers: [a.keyId],
      state: "staged",
      closedAt: null,
      rolloutId: null,
    };
  });

  it("a signature added by the second admin covers the same signed bytes: an agent with threshold 2 opens it", () => {
    assert.throws(() => verifySignatures(parseEnvelope(staged.envelope), trust), { reason: "untrusted_signer" });
    const both = addSignature(staged.envelope, b);
    assert.deepEqual(verifySignatures(parseEnvelope(both), trust), [a.keyId, b.keyId]);
    assert.deepEqual(parseEnvelope(both).signed, parseEnvelope(staged.envelope).signed);
    const opened = openEnvelope(both, {
      hostname: "web-1",
      nodeKeys: node,
      trust,
      highWaterMark: { id: 0, planHash: null },
      now: NOW + 1000,
    });
    assert.equal(opened.header.id, ID);
  });

  it("one admin cannot approve alone: the key that staged is refused, naming the fix", () => {
    assert.throws(
      () => newSigners(change, trust, [a]),
      (e: Error & { reason?: string }) =>
        e.reason === "conflict" && /one admin cannot approve alone/.test(e.message) && /--admin-key OTHER.key/.test(e.message),
    );
    assert.throws(() => newSigners(change, trust, [stranger]), { reason: "untrusted_signer" });
    assert.deepEqual(
      newSigners(change, trust, [a, b]).map((k) => k.keyId),
      [b.keyId],
    );
    // At the threshold already (a retry after a failed delivery): nothing more to sign.
    assert.deepEqual(newSigners({ ...change, signers: [a.keyId, b.keyId] }, trust, [b]), []);
  });

  it("a tampered envelope, or one not signed as recorded, is refused bad_signature", () => {
    checkIntact(staged, [a.keyId], trust);
    const flipped = staged.envelope.slice();
    flipped[flipped.length - 100]! ^= 1;
    assert.throws(() => checkIntact({ ...staged, envelope: flipped }, [a.keyId], trust), { reason: "bad_signature" });
    assert.throws(() => checkIntact(staged, [b.keyId], trust), { reason: "bad_signature" });
    assert.throws(() => checkIntact({ ...staged, id: ID + 1 }, [a.keyId], trust), { reason: "conflict" });
  });

  it("an expired, overtaken, approved or discarded change is refused with the fix", () => {
    const last = (id: number | null) => () => id;
    checkApprovable(change, [staged], last(ID), NOW);
    assert.throws(() => checkApprovable(change, [staged], last(ID), change.expiresAt), /S-3 expired at .*stage the push again/);
    assert.throws(
      () => checkApprovable(change, [staged], last(ID + 1), NOW),
      /S-3 was overtaken by a newer push to web-1 \(staged id \d+, now \d+\); discard it and stage/,
    );
    assert.throws(() => checkApprovable({ ...change, state: "approved" }, [staged], last(ID), NOW), /S-3 is approved; nothing to approve/);
    assert.throws(() => checkApprovable({ ...change, state: "discarded" }, [staged], last(ID), NOW), { reason: "conflict" });
  });

  it("names and per-host changes", () => {
    assert.equal(stagedName(7), "S-7");
    assert.deepEqual(["S-7", "s-7", "7"].map(parseStagedName), [7, 7, 7]);
    assert.throws(() => parseStagedName("rollout-7"), /is not like S-3; see `fleetplan staged`/);
    assert.throws(() => parseStagedName(undefined), { reason: "invalid_argument" });
    const h = (c: string) => c.repeat(64);
    assert.deepEqual(describeChange({ planHash: h("a"), prevHash: null }), { kind: "new_host" });
    assert.deepEqual(describeChange({ planHash: h("a"), prevHash: h("a") }), { kind: "same_plan" });
    assert.equal(changeText({ planHash: h("a"), prevHash: h("b") }), `${h("b").slice(0, 12)} -> ${h("a").slice(0, 12)}`);
  });
});
