// Freshness records (freeze detection): the coordinator signs, per host, the latest id it issued and
// until when the record holds. An agent that stops receiving them, or learns of an id it never got,
// is being withheld updates. Pure: bytes and keys in, a verified record or a coded error out.
import { FleetplanError } from "./errors.ts";
import { signBody, validSigners } from "./trust.ts";
import type { DocumentSignature } from "./trust.ts";
import type { AdminKeyPair, TrustSet } from "./types.ts";

/** Distinct from the envelope, status and trust domains. */
const FRESHNESS_DOMAIN = "fleetplan/freshness/v1\0";
const MAX_FRESHNESS_BYTES = 4096;

/** What a heartbeat asserts about one host; times in unix ms, `latest_id` 0 when none was issued. */
export interface Freshness {
  host: string;
  latest_id: number;
  issued: number;
  expires: number;
}

/** The store value: `{"v":1,"freshness":{...},"sigs":[...]}`. */
export const signFreshness = (record: Freshness, signers: AdminKeyPair[]): Uint8Array =>
  new TextEncoder().encode(JSON.stringify({ v: 1, freshness: record, sigs: signBody(FRESHNESS_DOMAIN, record, signers) }));

const bad = (message: string) => new FleetplanError("bad_freshness", message);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

const parseRecord = (bytes: Uint8Array): { freshness: Freshness; sigs: DocumentSignature[] } => {
  if (bytes.length > MAX_FRESHNESS_BYTES) throw bad(`freshness record is ${bytes.length} bytes, at most ${MAX_FRESHNESS_BYTES}`);
  let value: { v?: unknown; freshness?: Freshness; sigs?: DocumentSignature[] };
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as typeof value;
  } catch {
    throw bad("freshness record is not UTF-8 JSON");
  }
  const f = value?.freshness;
  if (value?.v !== 1 || typeof f !== "object" || f === null || !Array.isArray(value.sigs))
    throw bad("freshness record: expected {v:1, freshness, sigs}");
  if (Object.keys(f).sort().join() !== "expires,host,issued,latest_id" || typeof f.host !== "string") {
    throw bad("freshness record: expected exactly host, latest_id, issued, expires");
  }
  if (!isInt(f.latest_id) || !isInt(f.issued) || !isInt(f.expires))
    throw bad("freshness record: latest_id, issued and expires must be integers");
  return { freshness: f, sigs: value.sigs };
};

/**
 * Verify a freshness record for `host` with the agent's current trust: the threshold of its keys,
 * this very host, not issued beyond the clock skew. An expired record is returned (its expiry is
 * what the metric shows); replay of an older record is the caller's check (`issued` must grow).
 */
export const verifyFreshness = (bytes: Uint8Array, opts: { host: string; trust: TrustSet; now: number; skewMs: number }): Freshness => {
  const { freshness, sigs } = parseRecord(bytes);
  const valid = validSigners(FRESHNESS_DOMAIN, freshness, sigs, opts.trust.keys).size;
  if (valid < opts.trust.threshold) {
    throw new FleetplanError(
      "untrusted_signer",
      `freshness record: ${valid} valid signature(s) from trusted keys, ${opts.trust.threshold} required`,
    );
  }
  if (freshness.host !== opts.host)
    throw new FleetplanError("wrong_target", `freshness record is for ${freshness.host}, this is ${opts.host}`);
  if (freshness.issued > opts.now + opts.skewMs)
    throw new FleetplanError("from_future", "freshness record issued beyond the allowed clock skew");
  return freshness;
};
