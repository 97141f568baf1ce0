// The sealed box built from parts opens with libsodium's crypto_box_seal_open, and only there.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sealedBox } from "../../shared/sealed-box.ts";
import { sodium, sodiumReady } from "../../shared/sodium.ts";

await sodiumReady();

describe("sealedBox", () => {
  it("opens with crypto_box_seal_open for the recipient, at every size, and never twice the same", () => {
    const node = sodium.crypto_box_keypair();
    for (const size of [0, 1, 4096, 300_000]) {
      const message = sodium.randombytes_buf(size);
      const sealed = sealedBox(message, node.publicKey);
      assert.equal(sealed.length, message.length + sodium.crypto_box_SEALBYTES);
      assert.deepEqual(sodium.crypto_box_seal_open(sealed, node.publicKey, node.privateKey), message);
      assert.notDeepEqual(sealedBox(message, node.publicKey), sealed, "a fresh ephemeral key each time");
    }
  });

  it("does not open with another key pair, nor once a byte changed", () => {
    const node = sodium.crypto_box_keypair();
    const other = sodium.crypto_box_keypair();
    const sealed = sealedBox(new TextEncoder().encode("plan"), node.publicKey);
    assert.throws(() => sodium.crypto_box_seal_open(sealed, other.publicKey, other.privateKey));
    const bad = Uint8Array.from(sealed);
    bad[40]! ^= 1;
    assert.throws(() => sodium.crypto_box_seal_open(bad, node.publicKey, node.privateKey));
  });
});
