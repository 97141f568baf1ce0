import { domainSeparated } from "./canonical-json.ts";
import { sodium } from "./sodium.ts";
import type { AgentStatus } from "./types.ts";

// A status record on the wire: {"v":1,"status":{...},"sig":"<base64 Ed25519>"}, the signature by the
// node's identity key over STATUS_DOMAIN ‖ canonical JSON of `status`. Parsing is pure and never
// throws; whether a record counts as evidence is the coordinator's decision (status-evidence.ts).

/** Domain separation: a status signature can never pass for an envelope signature or the reverse. */
export const STATUS_DOMAIN = "fleetplan/status/v1\0";
/** A record is a few hundred bytes; anything far larger is not one (checked before parsing). */
export const MAX_STATUS_BYTES = 4096;

const STATES = new Set(["idle", "running", "succeeded", "failed", "interrupted", "rejected"]);
const FIELDS = new Set([
  "host",
  "state",
  "id",
  "plan_hash",
  "step_index",
  "steps",
  "since",
  "boot_time",
  "result",
  "applied_id",
  "applied_hash",
  "applied_boot_time",
  "version",
  // Optional (a record from an older agent has none): why a run failed, never plan content.
  "failure_reason",
  "exit_code",
  "failed_step",
  // Optional: files of the applied plan that no longer match it (a count, never their paths); null before a check.
  "drifted_files",
]);
const numOrNull = (v: unknown) => v === null || (typeof v === "number" && Number.isFinite(v));
const strOrNull = (v: unknown) => v === null || typeof v === "string";
const optional = (v: unknown, check: (v: unknown) => boolean) => v === undefined || check(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The exact bytes a status signature covers. */
export const statusSignedBytes = (status: AgentStatus): Uint8Array => domainSeparated(STATUS_DOMAIN, status);

/** The agent's record for the store: its status signed with the node identity (Ed25519 secret key). */
export const signStatusRecord = (status: AgentStatus, identityPrivateKey: Uint8Array): Uint8Array => {
  const sig = sodium.crypto_sign_detached(statusSignedBytes(status), identityPrivateKey);
  return new TextEncoder().encode(JSON.stringify({ v: 1, status, sig: sodium.to_base64(sig, sodium.base64_variants.ORIGINAL) }));
};

/** A well-formed status body, exactly the known fields; null otherwise. */
export const checkStatus = (v: unknown): AgentStatus | null => {
  if (!isObject(v) || Object.keys(v).some((k) => !FIELDS.has(k))) return null;
  const ok =
    typeof v.host === "string" &&
    STATES.has(v.state as string) &&
    numOrNull(v.id) &&
    strOrNull(v.plan_hash) &&
    numOrNull(v.step_index) &&
    numOrNull(v.steps) &&
    typeof v.since === "number" &&
    Number.isFinite(v.since) &&
    typeof v.boot_time === "number" &&
    strOrNull(v.result) &&
    numOrNull(v.applied_id) &&
    strOrNull(v.applied_hash) &&
    numOrNull(v.applied_boot_time) &&
    typeof v.version === "string" &&
    optional(v.failure_reason, strOrNull) &&
    optional(v.exit_code, numOrNull) &&
    optional(v.failed_step, numOrNull) &&
    optional(v.drifted_files, numOrNull);
  return ok ? (v as unknown as AgentStatus) : null;
};

/** Wire bytes split into status and signature, or why they are not a signed record at all. */
export type ParsedStatusRecord =
  | { ok: true; status: AgentStatus; sig: Uint8Array }
  | { ok: false; reason: "malformed" | "unsigned"; claimedHost: string | null };

/** Parse wire bytes; `claimedHost` is the host a refused record names (for reporting only, never trusted). */
export const parseStatusRecord = (bytes: Uint8Array): ParsedStatusRecord => {
  if (bytes.length > MAX_STATUS_BYTES) return { ok: false, reason: "malformed", claimedHost: null };
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return { ok: false, reason: "malformed", claimedHost: null };
  }
  if (!isObject(doc)) return { ok: false, reason: "malformed", claimedHost: null };
  const body = isObject(doc.status) ? doc.status : doc;
  const claimedHost = typeof body.host === "string" ? body.host : null;
  if (doc.sig === undefined || doc.sig === null || doc.sig === "") return { ok: false, reason: "unsigned", claimedHost };
  const status = checkStatus(doc.status);
  if (doc.v !== 1 || typeof doc.sig !== "string" || status === null || Object.keys(doc).length !== 3) {
    return { ok: false, reason: "malformed", claimedHost };
  }
  let sig: Uint8Array;
  try {
    sig = sodium.from_base64(doc.sig, sodium.base64_variants.ORIGINAL);
  } catch {
    return { ok: false, reason: "malformed", claimedHost };
  }
  return sig.length === 64 ? { ok: true, status, sig } : { ok: false, reason: "malformed", claimedHost };
};

/** Does `sig` by this identity public key cover exactly this status? */
export const statusSignatureValid = (status: AgentStatus, sig: Uint8Array, identityKey: Uint8Array): boolean => {
  try {
    return sodium.crypto_sign_verify_detached(sig, statusSignedBytes(status), identityKey);
  } catch {
    return false;
  }
};
