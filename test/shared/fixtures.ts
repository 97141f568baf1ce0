// Fixed keys, clock and options for envelope tests, so that each test names only what it changes.
import assert from "node:assert/strict";
import { adminKeyFromSeed, EnvelopeError, nodeKeyFromSeed, openEnvelope, sealEnvelope, sodiumReady } from "../../shared/mod.ts";
import type { AdminKeyPair, OpenOptions, Plan, RejectReason, SealOptions, TrustSet } from "../../shared/mod.ts";

await sodiumReady();

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

/** Three trusted admins (threshold tests use all of them) and one key nobody trusts. */
export const ADMINS: readonly AdminKeyPair[] = [0x11, 0x12, 0x13].map((b) => adminKeyFromSeed(seed(b)));
export const ADMIN = ADMINS[0]!;
export const OUTSIDER = adminKeyFromSeed(seed(0x66));
export const NODE = nodeKeyFromSeed(seed(0x21));
export const OTHER_NODE = nodeKeyFromSeed(seed(0x22));
export const HOST = "web-1.example.org";
export const NOW = 1_700_000_000_000;
/** Highest id this node has accepted; fresh envelopes use HWM_ID + 1. */
export const HWM_ID = 100;

export const trustOf = (keys: readonly AdminKeyPair[], threshold = 1): TrustSet => ({
  keys: new Map(keys.map((k) => [k.keyId, k.publicKey])),
  threshold,
});
export const TRUST = trustOf([ADMIN]);

/** A plan with one file of the given base64 content and one step. */
export const samplePlan = (content = "aGVsbG8K"): Plan => ({
  kind: "fleetplan/plan",
  v: 1,
  files: [{ path: "/etc/motd", mode: 0o644, content }],
  steps: [{ name: "reload", run: "systemctl reload nginx" }],
});

export const sealOptions = (overrides: Partial<SealOptions> = {}): SealOptions => ({
  id: HWM_ID + 1,
  target: HOST,
  nodePublicKey: NODE.publicKey,
  signers: [ADMIN],
  issued: NOW - 60_000,
  expires: NOW + 3_600_000,
  ...overrides,
});

export const seal = (plan: Plan | Uint8Array = samplePlan(), overrides: Partial<SealOptions> = {}): Uint8Array =>
  sealEnvelope(plan, sealOptions(overrides));

/** The header fields forge.ts needs for an envelope sealEnvelope would make with sealOptions(). */
export const honestFields = { id: HWM_ID + 1, target: HOST, recipient: NODE.keyId, issued: NOW - 60_000, expires: NOW + 3_600_000 };

export const openOptions = (overrides: Partial<OpenOptions> = {}): OpenOptions => ({
  hostname: HOST,
  nodeKeys: NODE,
  trust: TRUST,
  highWaterMark: { id: HWM_ID, planHash: null },
  now: NOW,
  ...overrides,
});

export const open = (bytes: Uint8Array, overrides: Partial<OpenOptions> = {}) => openEnvelope(bytes, openOptions(overrides));

/** The reason openEnvelope rejects with; fails the test if it opens or throws anything uncoded. */
export const rejection = (bytes: Uint8Array, overrides: Partial<OpenOptions> = {}): EnvelopeError => {
  try {
    open(bytes, overrides);
  } catch (error) {
    assert.ok(error instanceof EnvelopeError, `expected an EnvelopeError, got ${String(error)}`);
    return error;
  }
  return assert.fail("envelope was accepted");
};

/** Assert the rejection reason, and that the options the caller owns (the HWM) were not touched. */
export const assertRejects = (bytes: Uint8Array, reason: RejectReason, overrides: Partial<OpenOptions> = {}): EnvelopeError => {
  const options = openOptions(overrides);
  const hwm = structuredClone(options.highWaterMark);
  const error = rejection(bytes, options);
  assert.equal(error.reason, reason, error.message);
  assert.deepEqual(options.highWaterMark, hwm);
  return error;
};
