import type { AgentStatus } from "./types.ts";

const STATES = new Set(["idle", "running", "succeeded", "failed", "interrupted", "rejected"]);
const numOrNull = (v: unknown) => v === null || typeof v === "number";
const strOrNull = (v: unknown) => v === null || typeof v === "string";

export const encodeStatus = (status: AgentStatus): Uint8Array => new TextEncoder().encode(JSON.stringify(status));

/** Decode a status value from the store; null when it is not a well-formed status. */
export const decodeStatus = (bytes: Uint8Array): AgentStatus | null => {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  const ok =
    typeof v === "object" && v !== null &&
    typeof v.host === "string" && STATES.has(v.state as string) &&
    numOrNull(v.id) && strOrNull(v.plan_hash) && strOrNull(v.step) && numOrNull(v.step_index) && numOrNull(v.steps) &&
    typeof v.since === "number" && typeof v.boot_time === "number" && strOrNull(v.result) &&
    numOrNull(v.applied_id) && strOrNull(v.applied_hash) && numOrNull(v.applied_boot_time);
  return ok ? (v as unknown as AgentStatus) : null;
};
