// Every byte of a valid envelope, flipped in turn, is refused — and always at or before the
// signature step: no single-byte change reaches decryption, decompression or plan parsing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RejectReason } from "../../shared/mod.ts";
import { rejection, seal } from "./fixtures.ts";

/** The reasons steps 1–3 can give; anything later means a flipped byte got past the signature. */
const UP_TO_SIGNATURES: ReadonlySet<string> = new Set([
  RejectReason.TooLarge,
  RejectReason.Malformed,
  RejectReason.UnsupportedVersion,
  RejectReason.BadSignature,
  RejectReason.UntrustedSigner,
]);

describe("single-byte flips", () => {
  const valid = seal();

  for (const mask of [0x01, 0xff]) {
    it(`refuses every byte xor 0x${mask.toString(16).padStart(2, "0")} before decrypting`, () => {
      const seen = new Map<string, number>();
      for (let i = 0; i < valid.length; i++) {
        const copy = Uint8Array.from(valid);
        copy[i]! ^= mask;
        const { reason } = rejection(copy);
        assert.ok(UP_TO_SIGNATURES.has(reason), `byte ${i} xor ${mask}: got ${reason}`);
        seen.set(reason, (seen.get(reason) ?? 0) + 1);
      }
      // Sanity: the flips really cover framing, header, ciphertext and signature block.
      assert.ok(
        seen.has(RejectReason.Malformed) && seen.has(RejectReason.BadSignature) && seen.has(RejectReason.UntrustedSigner),
        JSON.stringify([...seen]),
      );
    });
  }
});
