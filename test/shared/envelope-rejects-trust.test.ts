// Steps 3–6: signatures, target, validity window and replay — each attack named and coded.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blake2bHex, planBytes, sodium } from "../../shared/mod.ts";
import { timestampId } from "../../shared/ids.ts";
import { splitEnvelope } from "../../shared/wire.ts";
import { ADMIN, ADMINS, assertRejects, HWM_ID, NOW, open, OTHER_NODE, OUTSIDER, samplePlan, seal, trustOf } from "./fixtures.ts";
import { resign } from "./forge.ts";

const valid = seal();
const validHash = blake2bHex(planBytes(samplePlan()));

describe("bad_signature", () => {
  it("refuses a trusted key id whose signature was tampered with", () => {
    const copy = Uint8Array.from(valid);
    copy[copy.length - 1]! ^= 0x01;
    assertRejects(copy, "bad_signature");
  });

  it("refuses a ciphertext changed after signing", () => {
    const { ciphertext } = splitEnvelope(valid);
    const copy = Uint8Array.from(valid);
    copy[ciphertext.byteOffset + 10]! ^= 0x80;
    assertRejects(copy, "bad_signature");
  });

  it("refuses a header edited after signing, keeping the old signature", () => {
    const edited = resign(valid, (h) => ({ ...h, target: "db-1.example.org" }), [ADMIN]);
    const oldSig = valid.subarray(valid.length - 72);
    const spliced = Uint8Array.from(edited);
    spliced.set(oldSig, spliced.length - 72);
    assertRejects(spliced, "bad_signature");
  });

  it("refuses a signature made without the domain prefix", () => {
    const { signed } = splitEnvelope(valid);
    const sig = sodium.crypto_sign_detached(signed, ADMIN.privateKey);
    const copy = Uint8Array.from(valid);
    copy.set(sig, copy.length - 64);
    assertRejects(copy, "bad_signature");
  });

  it("refuses an outsider's signature relabelled with a trusted key id", () => {
    const forged = resign(valid, (h) => h, [{ keyId: ADMIN.keyId, privateKey: OUTSIDER.privateKey }]);
    assertRejects(forged, "bad_signature");
  });
});

describe("untrusted_signer", () => {
  it("refuses an envelope signed only by a key outside the trust set", () => {
    assertRejects(seal(samplePlan(), { signers: [OUTSIDER] }), "untrusted_signer");
  });

  it("refuses an envelope with no signatures at all", () => {
    assertRejects(
      resign(valid, (h) => h, []),
      "untrusted_signer",
    );
  });
});

describe("threshold 2 of 3", () => {
  const trust = trustOf(ADMINS, 2);

  it("accepts two distinct trusted signers", () => {
    const opened = open(seal(samplePlan(), { signers: [ADMINS[0]!, ADMINS[2]!] }), { trust });
    assert.deepEqual(new Set(opened.signerIds), new Set([ADMINS[0]!.keyId, ADMINS[2]!.keyId]));
  });

  it("refuses one trusted key signing twice", () => {
    assertRejects(seal(samplePlan(), { signers: [ADMIN, ADMIN] }), "untrusted_signer", { trust });
  });

  it("refuses one trusted and one untrusted signer", () => {
    assertRejects(seal(samplePlan(), { signers: [ADMIN, OUTSIDER] }), "untrusted_signer", { trust });
  });

  it("refuses a single trusted signer", () => {
    assertRejects(valid, "untrusted_signer", { trust });
  });
});

describe("wrong_target", () => {
  it("refuses an envelope signed for another hostname", () => {
    assertRejects(seal(samplePlan(), { target: "db-1.example.org" }), "wrong_target");
  });

  it("refuses an envelope encrypted to another node key", () => {
    assertRejects(seal(samplePlan(), { nodePublicKey: OTHER_NODE.publicKey }), "wrong_target");
  });
});

describe("validity window", () => {
  it("refuses an expired envelope (expired)", () => {
    assertRejects(seal(samplePlan(), { issued: NOW - 7_200_000, expires: NOW - 1 }), "expired");
  });

  it("refuses an envelope expiring exactly now (expired)", () => {
    assertRejects(seal(samplePlan(), { expires: NOW }), "expired");
  });

  it("refuses an envelope issued beyond the allowed clock skew (from_future)", () => {
    assertRejects(seal(samplePlan(), { issued: NOW + 5 * 60_000 + 1 }), "from_future");
  });

  it("refuses an id that runs ahead of its own issue time: a huge id cannot freeze the host (from_future)", () => {
    for (const id of [Number.MAX_SAFE_INTEGER, 99991231235959, timestampId(new Date(NOW + 5 * 60_000 + 1_000))]) {
      const error = assertRejects(seal(samplePlan(), { id, issued: NOW }), "from_future");
      assert.match(error.message, /runs ahead of its issue time/);
    }
  });

  it("accepts an id up to its issue time plus the allowed skew, and any small id", () => {
    for (const id of [timestampId(new Date(NOW + 5 * 60_000)), HWM_ID + 7])
      assert.equal(open(seal(samplePlan(), { id, issued: NOW })).header.id, id);
  });

  it("accepts an envelope issued within the allowed clock skew", () => {
    assert.equal(open(seal(samplePlan(), { issued: NOW + 5 * 60_000 })).header.issued, NOW + 5 * 60_000);
  });
});

describe("replay and rollback", () => {
  it("refuses an id below the high-water mark (stale)", () => {
    assertRejects(seal(samplePlan("b2xkCg=="), { id: HWM_ID - 1 }), "stale", { highWaterMark: { id: HWM_ID, planHash: validHash } });
  });

  it("refuses the accepted id with a different plan (stale)", () => {
    const other = seal(samplePlan("b3RoZXIK"), { id: HWM_ID });
    assertRejects(other, "stale", { highWaterMark: { id: HWM_ID, planHash: validHash } });
  });

  it("reports a redelivery of the accepted envelope as duplicate", () => {
    const error = assertRejects(seal(samplePlan(), { id: HWM_ID }), "duplicate", { highWaterMark: { id: HWM_ID, planHash: validHash } });
    assert.equal(error.id, HWM_ID);
  });

  it("refuses an old id even when its plan hash equals the accepted one (stale)", () => {
    assertRejects(seal(samplePlan(), { id: HWM_ID - 1 }), "stale", { highWaterMark: { id: HWM_ID, planHash: validHash } });
  });
});
