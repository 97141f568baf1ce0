import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import type { KeyPair } from "@nats-io/nkeys";

// nkey key pairs signing through node:crypto: the same keys and signatures as @nats-io/nkeys
// (checked in test/coordinator/credentials.test.ts), without its per-call JavaScript derivation.

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

// An nkey seed is base32 of 2 prefix bytes, the 32-byte Ed25519 seed and a CRC-16.
const rawSeed = (seed: Uint8Array): Buffer => {
  const out: number[] = [];
  let value = 0;
  let bits = 0;
  for (const char of new TextDecoder().decode(seed)) {
    value = ((value << 5) | BASE32.indexOf(char)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out.slice(2, 34));
};

// CRC-16/XMODEM, the checksum at the end of every nkey.
const crc16 = (bytes: Uint8Array): number => {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
};

// RFC 4648 base32 without padding, as nkeys are written.
const base32 = (bytes: Uint8Array): string => {
  let out = "";
  let value = 0;
  let bits = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    for (; bits >= 5; bits -= 5) out += BASE32[(value >>> (bits - 5)) & 31];
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
};

// The public nkey (role prefix letter, e.g. U for users) of a node:crypto Ed25519 private key.
const publicNkey = (signer: ReturnType<typeof createPrivateKey>, prefixByte: number): string => {
  const raw = createPublicKey(signer).export({ format: "der", type: "spki" }).subarray(-32);
  const body = Buffer.concat([Buffer.of(prefixByte), raw]);
  const crc = crc16(body);
  return base32(Buffer.concat([body, Buffer.of(crc & 0xff, crc >> 8)]));
};

// nkeys' role prefix bytes, by the public key's first letter.
const ROLE_PREFIX = { O: 14 << 3, A: 0, U: 20 << 3 } as const;

/**
 * The same key pair, with its public key derived and its signatures made by node:crypto. nkeys
 * derives the key pair again in JavaScript on every call (~3.5 ms each, ~48 ms per credential
 * issued: 10,000 hosts took minutes); this makes issuing one well under a millisecond of CPU.
 */
export const fastKeyPair = (kp: KeyPair, role: keyof typeof ROLE_PREFIX): KeyPair => {
  let privateKey: Uint8Array | undefined;
  const signer = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, rawSeed(kp.getSeed())]), format: "der", type: "pkcs8" });
  const publicKey = publicNkey(signer, ROLE_PREFIX[role]);
  return {
    getPublicKey: () => publicKey,
    getPrivateKey: () => (privateKey ??= kp.getPrivateKey()),
    getSeed: () => kp.getSeed(),
    sign: (input) => new Uint8Array(sign(null, input, signer)),
    verify: (input, signature) => kp.verify(input, signature),
    clear: () => kp.clear(),
    seal: (input, recipient, nonce) => kp.seal(input, recipient, nonce),
    open: (message, sender) => kp.open(message, sender),
  };
};
