// The plan hash is public (envelope header, agent metrics, status records); the plan is not.
// Each host's plans carry a salt only the coordinator can derive, so the hash stays the same
// for the same plan and host (skip-if-converged works) yet confirms no guess of the content.
import { toHex } from "../shared/hex.ts";
import { blake2bHex } from "../shared/keys.ts";
import { planBytes, saltPlan } from "../shared/plan.ts";
import { sodium } from "../shared/sodium.ts";
import type { AdminKeyPair, Plan } from "../shared/types.ts";

// BLAKE2b key (16-64 bytes): separates this derivation from every other use of the admin seed.
const CONTEXT = new TextEncoder().encode("fleetplan/plan-salt/v1");

/** The salting key, derived from the first admin key's seed: no further secret to keep or lose. */
export const planSaltKey = (admin: AdminKeyPair): Uint8Array => sodium.crypto_generichash(32, admin.privateKey.subarray(0, 32), CONTEXT);

/** The plaintext bytes a host gets for `plan`, and their hash. */
export const bindPlan = (plan: Plan, saltKey: Uint8Array, host: string): { bytes: Uint8Array; hash: string } => {
  const salt = toHex(sodium.crypto_generichash(32, new TextEncoder().encode(host), saltKey));
  const bytes = planBytes(saltPlan(plan, salt));
  return { bytes, hash: blake2bHex(bytes) };
};
