// The tail of a failed run's output, for the coordinator's eyes only: the store is untrusted, so
// the output is encrypted with a random content key (secretbox), that key sealed once per trusted
// admin key (Ed25519 public key converted to X25519), and the whole record signed by the node
// identity. Pure: the agent seals (agent/report-output.ts), `fleetplan logs` opens.
import { domainSeparated } from "./canonical-json.ts";
import { FleetplanError } from "./errors.ts";
import { keyIdOf } from "./keys.ts";
import { sodium } from "./sodium.ts";
import type { AdminKeyPair } from "./types.ts";

/** Domain separation: an output signature can pass neither for a status nor for an envelope signature. */
const OUTPUT_DOMAIN = "fleetplan/output/v1\0";
/** The output kept: the last 8 KiB of the failing step (stdout and stderr as they interleaved). */
export const MAX_OUTPUT_TAIL = 8192;
/** A record: the tail in base64 plus one sealed key per admin key (at most 16); checked before parsing. */
export const MAX_OUTPUT_RECORD_BYTES = 16_384;

/** What a record says in the clear (signed): never plan content. */
export interface OutputMeta {
  host: string;
  id: number;
  /** unix ms when the run ended */
  at: number;
  failure_reason: string | null;
  exit_code: number | null;
  failed_step: number | null;
}

/** The signed body of a record (canonical JSON is what the signature covers). */
interface OutputBody extends OutputMeta {
  v: 1;
  /** key id of the admin key → base64 crypto_box_seal(content key, its X25519 form) */
  keys: Record<string, string>;
  nonce: string;
  ct: string;
}

const B64 = () => sodium.base64_variants.ORIGINAL;
const b64 = (bytes: Uint8Array): string => sodium.to_base64(bytes, B64());
const unb64 = (text: string): Uint8Array => sodium.from_base64(text, B64());
const malformed = (why: string) => new FleetplanError("malformed", `output record: ${why}`);

const signedBytes = (body: OutputBody): Uint8Array => domainSeparated(OUTPUT_DOMAIN, body);

/** Seal `output` (its last MAX_OUTPUT_TAIL bytes) to every admin key of `adminKeys` and sign it with the node identity. */
export const sealOutput = (meta: OutputMeta, output: Uint8Array, adminKeys: Uint8Array[], identityPrivateKey: Uint8Array): Uint8Array => {
  const tail = output.subarray(Math.max(0, output.length - MAX_OUTPUT_TAIL));
  const key = sodium.crypto_secretbox_keygen();
  const nonce = sodium.randombytes_buf(sodium.crypto_secretbox_NONCEBYTES);
  const sealTo = (pk: Uint8Array) => b64(sodium.crypto_box_seal(key, sodium.crypto_sign_ed25519_pk_to_curve25519(pk)));
  const keys = Object.fromEntries(adminKeys.map((pk) => [keyIdOf(pk), sealTo(pk)]));
  const body: OutputBody = { ...meta, v: 1, keys, nonce: b64(nonce), ct: b64(sodium.crypto_secretbox_easy(tail, nonce, key)) };
  const sig = sodium.crypto_sign_detached(signedBytes(body), identityPrivateKey);
  return new TextEncoder().encode(JSON.stringify({ ...body, sig: b64(sig) }));
};

// Signed by the node, which is untrusted all the same: a field `logs` prints must have the type it prints as.
const optional = (v: unknown, ok: (v: unknown) => boolean): boolean => v === undefined || v === null || ok(v);

const parseBody = (bytes: Uint8Array): { body: OutputBody; sig: Uint8Array } => {
  if (bytes.length > MAX_OUTPUT_RECORD_BYTES) throw malformed(`${bytes.length} bytes, over ${MAX_OUTPUT_RECORD_BYTES}`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch {
    throw malformed("not JSON");
  }
  const { sig, ...body } = doc ?? {};
  const ok =
    typeof doc === "object" &&
    doc !== null &&
    body.v === 1 &&
    typeof sig === "string" &&
    typeof body.host === "string" &&
    Number.isSafeInteger(body.id) &&
    Number.isSafeInteger(body.at) &&
    optional(body.failure_reason, (v) => typeof v === "string") &&
    optional(body.exit_code, Number.isSafeInteger) &&
    optional(body.failed_step, Number.isSafeInteger) &&
    typeof body.nonce === "string" &&
    typeof body.ct === "string" &&
    typeof body.keys === "object" &&
    body.keys !== null;
  if (!ok) throw malformed("missing or mistyped fields");
  try {
    return { body: body as unknown as OutputBody, sig: unb64(sig as string) };
  } catch {
    throw malformed("signature is not base64");
  }
};

/**
 * Verify a record read under `host`'s key with that host's identity key, then open it with the
 * admin key. Throws wrong_host, bad_signature (forged or altered), not_a_recipient or decrypt_failed.
 */
export const openOutput = (
  bytes: Uint8Array,
  host: string,
  identityKey: Uint8Array,
  admin: AdminKeyPair,
): OutputMeta & { output: Uint8Array } => {
  const { body, sig } = parseBody(bytes);
  if (body.host !== host) throw new FleetplanError("wrong_host", `output record under ${host}'s key names ${JSON.stringify(body.host)}`);
  let valid = false;
  try {
    valid = sig.length === 64 && sodium.crypto_sign_verify_detached(sig, signedBytes(body), identityKey);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new FleetplanError(
      "bad_signature",
      `output record of ${host} is not signed by its node identity key: forged or altered, not shown`,
    );
  }
  const sealed = (body.keys as Record<string, unknown>)[admin.keyId];
  if (typeof sealed !== "string") {
    throw new FleetplanError(
      "not_a_recipient",
      `output record of ${host} id ${body.id} is not sealed to admin key ${admin.keyId}: ` +
        `the agent trusts ${Object.keys(body.keys).join(", ") || "no key"}; use one of those with --admin-key`,
    );
  }
  try {
    const key = sodium.crypto_box_seal_open(
      unb64(sealed),
      sodium.crypto_sign_ed25519_pk_to_curve25519(admin.publicKey),
      sodium.crypto_sign_ed25519_sk_to_curve25519(admin.privateKey),
    );
    const output = sodium.crypto_secretbox_open_easy(unb64(body.ct), unb64(body.nonce), key);
    const { host: h, id, at, failure_reason, exit_code, failed_step } = body;
    return {
      host: h,
      id,
      at,
      failure_reason: failure_reason ?? null,
      exit_code: exit_code ?? null,
      failed_step: failed_step ?? null,
      output,
    };
  } catch {
    throw new FleetplanError("decrypt_failed", `output record of ${host} id ${body.id} does not open with admin key ${admin.keyId}`);
  }
};
