// Plans kept for resume and revert hold secrets (file contents, step env): in the coordinator
// database they are sealed with a key derived from the first admin key, and named by a keyed
// hash, so a copy of the database reveals neither a plan nor whether a guess of one is right.
import { FleetplanError } from "../../shared/errors.ts";
import { toHex } from "../../shared/hex.ts";
import { sodium } from "../../shared/sodium.ts";
import type { AdminKeyPair } from "../../shared/types.ts";

// BLAKE2b key (16-64 bytes): separates this derivation from every other use of the admin seed.
const CONTEXT = new TextEncoder().encode("fleetplan/plan-vault/v1");

export interface PlanVault {
  /** The body's name: a keyed hash of the plan JSON. */
  nameOf(json: string): string;
  seal(json: string): string;
  open(blob: string, name: string): string;
}

/** A vault keyed from the admin key that signs (the same key must open what it sealed). */
export const planVault = (admin: AdminKeyPair): PlanVault => {
  const key = sodium.crypto_generichash(32, admin.privateKey.subarray(0, 32), CONTEXT);
  return {
    nameOf: (json) => toHex(sodium.crypto_generichash(32, new TextEncoder().encode(json), key)),
    seal: (json) => {
      const nonce = sodium.randombytes_buf(sodium.crypto_secretbox_NONCEBYTES);
      const box = sodium.crypto_secretbox_easy(new TextEncoder().encode(json), nonce, key);
      return Buffer.concat([nonce, box]).toString("base64");
    },
    open: (blob, name) => {
      const bytes = Buffer.from(blob, "base64");
      try {
        const nonce = bytes.subarray(0, sodium.crypto_secretbox_NONCEBYTES);
        return new TextDecoder().decode(sodium.crypto_secretbox_open_easy(bytes.subarray(nonce.length), nonce, key));
      } catch {
        throw new FleetplanError(
          "bad_key",
          `plan ${name.slice(0, 16)}… in the coordinator database was sealed with another admin key: use the --admin-key that pushed it`,
        );
      }
    },
  };
};
