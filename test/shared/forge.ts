// Hostile-but-signed envelopes. sealEnvelope only makes honest ones; to prove the checks after
// step 3 (signatures) hold, tests need envelopes an attacker with a trusted key — or a bug in
// the coordinator — could produce: any header bytes, any ciphertext, any list of signers.
// Built from the real wire helpers so only the content is hostile, never the framing code.
import { blake2bHex, canonicalBytes, sodium } from "../../shared/mod.ts";
import { encodeSigned, SIG_ENTRY_BYTES, SIGNING_PREFIX, splitEnvelope } from "../../shared/wire.ts";

/** Anything that can sign: an AdminKeyPair fits. */
export interface Signer {
  keyId: string;
  privateKey: Uint8Array;
}

export type HeaderFields = Record<string, unknown>;

/** Frame header (an object, written as canonical JSON, or raw bytes) and ciphertext, then sign with each signer. */
export const forgeEnvelope = (header: HeaderFields | Uint8Array, ciphertext: Uint8Array, signers: readonly Signer[]): Uint8Array => {
  const headerBytes = header instanceof Uint8Array ? header : canonicalBytes(header);
  const out = encodeSigned(headerBytes, ciphertext, signers.length);
  const signedEnd = out.length - 1 - signers.length * SIG_ENTRY_BYTES;
  const message = new Uint8Array(SIGNING_PREFIX.length + signedEnd);
  message.set(SIGNING_PREFIX, 0);
  message.set(out.subarray(0, signedEnd), SIGNING_PREFIX.length);
  signers.forEach((signer, i) => {
    const at = signedEnd + 1 + i * SIG_ENTRY_BYTES;
    out.set(sodium.from_hex(signer.keyId), at);
    out.set(sodium.crypto_sign_detached(message, signer.privateKey), at + 8);
  });
  return out;
};

/** The header sealEnvelope would write for these plaintext bytes, with any field overridden. */
export const headerFor = (
  plain: Uint8Array,
  fields: { id: number; target: string; recipient: string; issued: number; expires: number },
  overrides: HeaderFields = {},
): HeaderFields => ({
  v: 1,
  ...fields,
  plan_hash: blake2bHex(plain),
  plan_size: plain.length,
  codec: "zstd",
  ...overrides,
});

/** Encrypt arbitrary bytes (zstd or not) to a node key, as the ciphertext field. */
export const sealTo = (bytes: Uint8Array, nodePublicKey: Uint8Array): Uint8Array => sodium.crypto_box_seal(bytes, nodePublicKey);

/** The header of an existing envelope as a plain object (framing must be intact). */
export const headerOf = (envelope: Uint8Array): HeaderFields =>
  JSON.parse(new TextDecoder().decode(splitEnvelope(envelope).headerBytes)) as HeaderFields;

/** Keep an envelope's ciphertext, edit its header, and sign again with the given signers. */
export const resign = (
  envelope: Uint8Array,
  edit: (header: HeaderFields) => HeaderFields | Uint8Array,
  signers: readonly Signer[],
): Uint8Array => forgeEnvelope(edit(headerOf(envelope)), splitEnvelope(envelope).ciphertext, signers);
