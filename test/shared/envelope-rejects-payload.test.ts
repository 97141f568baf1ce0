// Step 7: envelopes a trusted key really signed whose payload is still wrong. Only a trusted
// signer (or a coordinator bug) can make these, so each is forged with forge.ts or sealed from
// raw bytes — sealEnvelope takes plan bytes as given.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalBytes, compressPlan, planBytes, sodium } from "../../shared/mod.ts";
import type { Plan } from "../../shared/mod.ts";
import { ADMIN, assertRejects, honestFields, HWM_ID, NODE, OTHER_NODE, samplePlan, seal } from "./fixtures.ts";
import { forgeEnvelope, headerFor, sealTo } from "./forge.ts";

const plain = planBytes(samplePlan());

describe("decrypt_failed", () => {
  it("refuses a ciphertext sealed to another node key under a header naming ours", () => {
    const forged = forgeEnvelope(headerFor(plain, honestFields), sealTo(compressPlan(plain), OTHER_NODE.publicKey), [ADMIN]);
    assertRejects(forged, "decrypt_failed");
  });

  it("refuses a ciphertext too short to be a sealed box", () => {
    assertRejects(forgeEnvelope(headerFor(plain, honestFields), new Uint8Array(47), [ADMIN]), "decrypt_failed");
  });

  it("refuses random bytes in place of a sealed box", () => {
    assertRejects(forgeEnvelope(headerFor(plain, honestFields), sodium.randombytes_buf(200), [ADMIN]), "decrypt_failed");
  });
});

describe("decompress_failed", () => {
  it("refuses a sealed payload that is not zstd", () => {
    const garbage = new TextEncoder().encode("this is not a zstd frame at all");
    assertRejects(forgeEnvelope(headerFor(plain, honestFields), sealTo(garbage, NODE.publicKey), [ADMIN]), "decompress_failed");
  });

  it("refuses a truncated zstd frame", () => {
    const frame = compressPlan(plain);
    assertRejects(
      forgeEnvelope(headerFor(plain, honestFields), sealTo(frame.subarray(0, frame.length - 3), NODE.publicKey), [ADMIN]),
      "decompress_failed",
    );
  });

  it("refuses trailing bytes after the zstd frame", () => {
    const frame = compressPlan(plain);
    const padded = new Uint8Array(frame.length + 4);
    padded.set(frame);
    assertRejects(forgeEnvelope(headerFor(plain, honestFields), sealTo(padded, NODE.publicKey), [ADMIN]), "decompress_failed");
  });

  it("refuses an empty sealed payload, even for an empty plan", () => {
    const empty = new Uint8Array(0);
    assertRejects(forgeEnvelope(headerFor(empty, honestFields), sealTo(empty, NODE.publicKey), [ADMIN]), "decompress_failed");
  });

  it("refuses a plan shorter than the declared plan_size", () => {
    const header = headerFor(plain, honestFields, { plan_size: plain.length + 10 });
    assertRejects(forgeEnvelope(header, sealTo(compressPlan(plain), NODE.publicKey), [ADMIN]), "decompress_failed");
  });
});

describe("hash_mismatch", () => {
  it("refuses a plan whose BLAKE2b differs from the signed plan_hash", () => {
    const swapped = planBytes(samplePlan("ZXZpbAo="));
    const header = headerFor(plain, honestFields);
    // Same length, other content: only the hash can tell them apart.
    assert.equal(swapped.length, plain.length);
    assertRejects(forgeEnvelope(header, sealTo(compressPlan(swapped), NODE.publicKey), [ADMIN]), "hash_mismatch");
  });
});

describe("invalid_plan", () => {
  const sealBytes = (bytes: Uint8Array) => seal(bytes);
  const withPlan = (edit: (plan: Plan) => unknown) => canonicalBytes(edit(samplePlan()));

  it("refuses a step without run", () => {
    assertRejects(sealBytes(withPlan((p) => ({ ...p, steps: [{ name: "no-run" }] }))), "invalid_plan");
  });

  it("refuses a relative file path", () => {
    assertRejects(sealBytes(withPlan((p) => ({ ...p, files: [{ ...p.files[0]!, path: "etc/shadow" }] }))), "invalid_plan");
  });

  it("refuses a file path escaping with ..", () => {
    assertRejects(
      sealBytes(withPlan((p) => ({ ...p, files: [{ ...p.files[0]!, path: "/etc/../root/.ssh/authorized_keys" }] }))),
      "invalid_plan",
    );
  });

  it("refuses a plan.id different from the header id (replaying an old plan body)", () => {
    assertRejects(sealBytes(planBytes({ ...samplePlan(), id: HWM_ID - 50 })), "invalid_plan");
  });

  it("refuses a plan.target different from the header target", () => {
    assertRejects(sealBytes(planBytes({ ...samplePlan(), target: "db-1.example.org" })), "invalid_plan");
  });

  it("refuses plaintext that is not JSON", () => {
    assertRejects(sealBytes(new TextEncoder().encode("#!/bin/sh\nrm -rf /\n")), "invalid_plan");
  });

  it("refuses plaintext that is not UTF-8", () => {
    assertRejects(sealBytes(new Uint8Array([0x22, 0xff, 0xfe, 0x22])), "invalid_plan");
  });

  it("refuses a plan of another kind", () => {
    assertRejects(sealBytes(withPlan((p) => ({ ...p, kind: "fleetplan/other" }))), "invalid_plan");
  });
});
