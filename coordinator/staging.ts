// The two-person rule, pure: what a staged change says about each host, whether it may still be
// approved, and adding one admin's signature to a staged envelope over the very bytes the first
// admin signed. No I/O here: coordinator/staging-db.ts keeps staged changes, cli/ drives them.
import { FleetplanError } from "../shared/errors.ts";
import { sodium } from "../shared/sodium.ts";
import type { AdminKeyPair, TrustSet } from "../shared/types.ts";
import { MAX_SIGNATURES, SIG_ENTRY_BYTES, SIGNING_PREFIX, splitEnvelope } from "../shared/wire.ts";
import { parseEnvelope } from "../shared/envelope.ts";

/** One host's sealed envelope waiting for approval, and what that host was expected to run when it was staged. */
export interface StagedEnvelope {
  host: string;
  id: number;
  planHash: string;
  prevId: number | null;
  prevHash: string | null;
  via: "store" | "ssh";
  envelope: Uint8Array;
}

/** A staged change is staged until approved (published) or discarded; a closed one never reopens. */
export type StagedState = "staged" | "approved" | "discarded";

/** A staged change: envelopes signed by fewer admins than the trust threshold, not yet published. */
export interface StagedChange {
  id: number;
  createdAt: number;
  /** The envelopes' own `expires`: past it they are worthless, so the change can no longer be approved. */
  expiresAt: number;
  operator: string;
  /** The trust file (formatTrust text) the approval is checked against: the agents' keys and threshold. */
  trust: string;
  /** Key ids that signed every envelope so far, in signing order. */
  signers: string[];
  state: StagedState;
  closedAt: number | null;
  /** A staged rollout (push --waves --stage): recorded paused, run wave by wave once approved. */
  rolloutId: number | null;
}

/** Per-host change as `staged` shows it: a host never pushed, the same plan again, or one plan hash to another. */
export type HostChange = { kind: "new_host" } | { kind: "same_plan" } | { kind: "changed"; from: string };

/** `S-<n>`: how staged changes are named, apart from rollout ids and provisioning ids. */
export const stagedName = (id: number): string => `S-${id}`;

/** `S-3`, `s-3` or `3` → 3; anything else is refused naming the fix. */
export const parseStagedName = (text: string | undefined): number => {
  const match = /^(?:[sS]-)?(\d{1,15})$/.exec(text ?? "");
  if (match === null) {
    throw new FleetplanError(
      "invalid_argument",
      `staged change id ${JSON.stringify(text ?? "")} is not like S-3; see \`fleetplan staged\``,
    );
  }
  return Number(match[1]);
};

/** The bytes every signature covers: the domain prefix, then everything before the signature count. */
const signingMessage = (signed: Uint8Array): Uint8Array => {
  const message = new Uint8Array(SIGNING_PREFIX.length + signed.length);
  message.set(SIGNING_PREFIX, 0);
  message.set(signed, SIGNING_PREFIX.length);
  return message;
};

/** What approving this envelope changes on its host. */
export const describeChange = (e: Pick<StagedEnvelope, "planHash" | "prevHash">): HostChange =>
  e.prevHash === null ? { kind: "new_host" } : e.prevHash === e.planHash ? { kind: "same_plan" } : { kind: "changed", from: e.prevHash };

/** One line for people: `new host`, `same plan`, `3f2a9c1e0b4d -> 77e1…`. */
export const changeText = (e: Pick<StagedEnvelope, "planHash" | "prevHash">): string => {
  const c = describeChange(e);
  return c.kind === "new_host" ? "new host" : c.kind === "same_plan" ? "same plan" : `${c.from.slice(0, 12)} -> ${e.planHash.slice(0, 12)}`;
};

/**
 * May this change still be approved? Refused when no longer staged, expired, or overtaken: a host's
 * last issued id is above the staged one (a newer push or stage since), so the agent would refuse it as stale.
 */
export const checkApprovable = (
  change: StagedChange,
  envelopes: readonly StagedEnvelope[],
  lastIssued: (host: string) => number | null,
  now: number,
): void => {
  const name = stagedName(change.id);
  if (change.state !== "staged") {
    throw new FleetplanError("conflict", `${name} is ${change.state}; nothing to approve (see \`fleetplan staged\`)`);
  }
  if (now >= change.expiresAt) {
    const at = new Date(change.expiresAt).toISOString();
    throw new FleetplanError("conflict", `${name} expired at ${at}: its envelopes would be refused; stage the push again (push --stage)`);
  }
  const overtaken = envelopes.filter((e) => (lastIssued(e.host) ?? 0) > e.id);
  if (overtaken.length > 0) {
    const named = overtaken
      .slice(0, 10)
      .map((e) => `${e.host} (staged id ${e.id}, now ${lastIssued(e.host)})`)
      .join(", ");
    throw new FleetplanError("conflict", `${name} was overtaken by a newer push to ${named}; discard it and stage the push again`);
  }
};

/**
 * Which of `approvers` add a signature: each must be in the trust set and not have signed already (a
 * second admin approves, never the first again). Refuses, naming the key and the fix, when none adds one
 * to a change still below the threshold.
 */
export const newSigners = (change: StagedChange, trust: TrustSet, approvers: readonly AdminKeyPair[]): AdminKeyPair[] => {
  const name = stagedName(change.id);
  const untrusted = approvers.filter((k) => !trust.keys.has(k.keyId));
  if (untrusted.length > 0) {
    const ids = untrusted.map((k) => k.keyId).join(", ");
    throw new FleetplanError(
      "untrusted_signer",
      `admin key ${ids} is not in the trust set of ${name}; approve with a key the agents trust`,
    );
  }
  // Already at the threshold (a delivery failed after an earlier approval): publishing again needs no new signature.
  if (change.signers.length >= trust.threshold) return [];
  const fresh = [...new Map(approvers.filter((k) => !change.signers.includes(k.keyId)).map((k) => [k.keyId, k])).values()];
  if (fresh.length === 0) {
    const ids = approvers.map((k) => k.keyId).join(", ");
    throw new FleetplanError(
      "conflict",
      `${name} is already signed by ${ids}: one admin cannot approve alone; a second admin approves with their own key (--admin-key OTHER.key)`,
    );
  }
  return fresh;
};

/**
 * Check a staged envelope is intact: it names the recorded host, id and plan hash, and carries a valid
 * signature from each recorded signer (and nothing else). Throws `bad_signature` or `conflict` naming the host.
 */
export const checkIntact = (e: StagedEnvelope, signers: readonly string[], trust: TrustSet): void => {
  const parts = parseEnvelope(e.envelope);
  const { header } = parts;
  if (header.target !== e.host || header.id !== e.id || header.plan_hash !== e.planHash) {
    const found = `id ${header.id}, host ${header.target}`;
    throw new FleetplanError("conflict", `staged envelope of ${e.host} does not match its record (${found}); stage again`);
  }
  const message = signingMessage(parts.signed);
  const ids = parts.signatures.map((s) => s.keyId);
  const valid = parts.signatures.every((s) => {
    const key = trust.keys.get(s.keyId);
    return key !== undefined && sodium.crypto_sign_verify_detached(s.sig, message, key);
  });
  if (!valid || ids.join() !== signers.join()) {
    const recorded = signers.join(", ");
    throw new FleetplanError(
      "bad_signature",
      `staged envelope of ${e.host} is not signed as recorded (${recorded}); discard it and stage again`,
    );
  }
};

/** The envelope with one more signature appended, over the same signed bytes (domain prefix ‖ everything before sig_count). */
export const addSignature = (envelope: Uint8Array, signer: AdminKeyPair): Uint8Array => {
  const { signed, signatures } = splitEnvelope(envelope);
  if (signatures.length >= MAX_SIGNATURES) throw new FleetplanError("conflict", `an envelope carries at most ${MAX_SIGNATURES} signatures`);
  const out = new Uint8Array(envelope.length + SIG_ENTRY_BYTES);
  out.set(envelope, 0);
  out[signed.length] = signatures.length + 1;
  const sig = sodium.crypto_sign_detached(signingMessage(signed), signer.privateKey);
  out.set(sodium.from_hex(signer.keyId), envelope.length);
  out.set(sig, envelope.length + 8);
  return out;
};
