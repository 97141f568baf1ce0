// bindPlan (plan-salt.ts) for many hosts at the cost of a hash: the plan is serialised once with
// a placeholder salt, and each host's salt is written over it. Canonical JSON writes a hex string
// as-is, so the bytes are exactly those of bindPlan (test/coordinator/plan-binder.test.ts).
import { toHex } from "../shared/hex.ts";
import { blake2bHex } from "../shared/keys.ts";
import { planBytes, saltPlan } from "../shared/plan.ts";
import { sodium } from "../shared/sodium.ts";
import type { Plan } from "../shared/types.ts";
import { bindPlan } from "./plan-salt.ts";

const ENCODER = new TextEncoder();

/** Where `needle` starts in `haystack`, if it occurs exactly once; else -1. */
const onlyOffset = (haystack: Uint8Array, needle: Uint8Array): number => {
  const text = Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength);
  const at = text.indexOf(needle);
  return at >= 0 && text.indexOf(needle, at + 1) < 0 ? at : -1;
};

/** Returns host => bindPlan(plan, saltKey, host), serialising `plan` once. */
export const planBinder = (plan: Plan, saltKey: Uint8Array): ((host: string) => { bytes: Uint8Array; hash: string }) => {
  const placeholder = ENCODER.encode(toHex(sodium.randombytes_buf(32)));
  const template = planBytes(saltPlan(plan, new TextDecoder().decode(placeholder)));
  const at = onlyOffset(template, placeholder);
  // The random placeholder also in the plan's content (never seen): serialise per host instead.
  if (at < 0) return (host) => bindPlan(plan, saltKey, host);
  return (host) => {
    const bytes = template.slice();
    bytes.set(ENCODER.encode(toHex(sodium.crypto_generichash(32, ENCODER.encode(host), saltKey))), at);
    return { bytes, hash: blake2bHex(bytes) };
  };
};
