// Trust documents (TUF root rotation): version N+1 of the admin key set, signed by the threshold of
// the current set AND of the new one. Pure: bytes and keys in, a verified trust state or a coded error out.
import { domainSeparated } from "./canonical-json.ts";
import { FleetplanError } from "./errors.ts";
import { keyIdOf } from "./keys.ts";
import { sodium } from "./sodium.ts";
import type { AdminKeyPair, TrustSet } from "./types.ts";

const TRUST_KIND = "fleetplan/trust";
/** Distinct from the envelope, status and freshness domains: no signature can be replayed across them. */
const TRUST_DOMAIN = "fleetplan/trust/v1\0";
/** A trust record is a few keys and signatures: anything larger is refused before parsing. */
const MAX_TRUST_BYTES = 16 * 1024;
/** A trust set holds at most this many keys, like an envelope's signature count. */
const MAX_KEYS = 16;

/** The signed body: the admin public keys (base64), how many must sign, and until when it may be adopted. */
export interface TrustDocument {
  kind: typeof TRUST_KIND;
  version: number;
  keys: string[];
  threshold: number;
  /** unix ms */
  expires: number;
}

/** One admin key's signature on a trust or freshness document. */
export interface DocumentSignature {
  key_id: string;
  sig: string;
}

/** The store value: `{"v":1,"trust":{...},"sigs":[...]}`. */
export interface SignedTrust {
  v: 1;
  trust: TrustDocument;
  sigs: DocumentSignature[];
}

/** The trust an agent holds: the version-1 root from its trust file, or the last accepted document. */
export interface TrustState {
  version: number;
  trust: TrustSet;
  /** unix ms; null for the root trust file, which does not expire */
  expires: number | null;
}

const b64 = (bytes: Uint8Array): string => sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
const fromB64 = (text: string): Uint8Array => sodium.from_base64(text, sodium.base64_variants.ORIGINAL);

const bad = (message: string) => new FleetplanError("bad_trust", message);

/** Sign a body under a domain with every signer (one entry per distinct key). */
export const signBody = (domain: string, body: unknown, signers: AdminKeyPair[]): DocumentSignature[] => {
  const message = domainSeparated(domain, body);
  const distinct = [...new Map(signers.map((s) => [s.keyId, s])).values()];
  return distinct.map((s) => ({ key_id: s.keyId, sig: b64(sodium.crypto_sign_detached(message, s.privateKey)) }));
};

/** The ids of the keys of `keys` whose signature over the body verifies; each key counted once. */
export const validSigners = (domain: string, body: unknown, sigs: DocumentSignature[], keys: Map<string, Uint8Array>): Set<string> => {
  const message = domainSeparated(domain, body);
  const valid = new Set<string>();
  for (const { key_id: keyId, sig } of sigs) {
    const key = keys.get(keyId);
    if (!key || valid.has(keyId)) continue;
    let bytes: Uint8Array;
    try {
      bytes = fromB64(sig);
    } catch {
      continue;
    }
    if (bytes.length === 64 && sodium.crypto_sign_verify_detached(bytes, message, key)) valid.add(keyId);
  }
  return valid;
};

/** The trust set a document names (keys by id). */
const trustSetOf = (doc: TrustDocument): TrustSet => ({
  keys: new Map(
    doc.keys.map((k) => {
      const key = fromB64(k);
      return [keyIdOf(key), key];
    }),
  ),
  threshold: doc.threshold,
});

/** A new unsigned document for a key set (the caller checks the threshold against the set). */
export const trustDocument = (version: number, keys: Uint8Array[], threshold: number, expires: number): TrustDocument => ({
  kind: TRUST_KIND,
  version,
  keys: [...new Set(keys.map(b64))].sort(),
  threshold,
  expires,
});

/** The store value of a document signed by `signers`. */
export const signTrust = (doc: TrustDocument, signers: AdminKeyPair[]): Uint8Array =>
  new TextEncoder().encode(JSON.stringify({ v: 1, trust: doc, sigs: signBody(TRUST_DOMAIN, doc, signers) } satisfies SignedTrust));

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Parse and check the shape of a stored trust record (no signature checked yet). */
export const parseTrustRecord = (bytes: Uint8Array): SignedTrust => {
  if (bytes.length > MAX_TRUST_BYTES) throw bad(`trust record is ${bytes.length} bytes, at most ${MAX_TRUST_BYTES}`);
  let value: SignedTrust;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as SignedTrust;
  } catch {
    throw bad("trust record is not UTF-8 JSON");
  }
  const doc = value?.trust;
  if (value?.v !== 1 || typeof doc !== "object" || doc === null || !Array.isArray(value.sigs))
    throw bad("trust record: expected {v:1, trust, sigs}");
  if (Object.keys(doc).sort().join() !== "expires,keys,kind,threshold,version" || doc.kind !== TRUST_KIND) {
    throw bad(`trust document: expected exactly kind "${TRUST_KIND}", version, keys, threshold, expires`);
  }
  if (!isInt(doc.version) || doc.version < 1 || !isInt(doc.expires)) throw bad("trust document: version and expires must be integers");
  if (!Array.isArray(doc.keys) || doc.keys.length === 0 || doc.keys.length > MAX_KEYS || doc.keys.some((k) => typeof k !== "string")) {
    throw bad(`trust document: keys must be 1-${MAX_KEYS} base64 Ed25519 public keys`);
  }
  let set: TrustSet;
  try {
    set = trustSetOf(doc);
  } catch {
    throw bad("trust document: a key is not base64");
  }
  if ([...set.keys.values()].some((k) => k.length !== 32) || set.keys.size !== doc.keys.length) {
    throw bad("trust document: keys must be distinct 32-byte keys");
  }
  if (!isInt(doc.threshold) || doc.threshold < 1 || doc.threshold > set.keys.size) {
    throw bad("trust document: threshold must be 1 to the number of keys");
  }
  if (value.sigs.some((s) => typeof s?.key_id !== "string" || typeof s?.sig !== "string"))
    throw bad("trust record: sigs must be {key_id, sig}");
  return value;
};

/**
 * Accept rule of one rotation: exactly the next version, signed by the threshold of the current
 * set and of the new set. Expiry is checked by the caller (only the newest document must be unexpired).
 */
export const verifyRotation = (current: TrustState, record: SignedTrust): TrustState => {
  const doc = record.trust;
  if (doc.version !== current.version + 1) {
    throw new FleetplanError("trust_version", `trust version ${doc.version} does not follow the current version ${current.version}`);
  }
  const next = trustSetOf(doc);
  const byCurrent = validSigners(TRUST_DOMAIN, doc, record.sigs, current.trust.keys).size;
  const byNext = validSigners(TRUST_DOMAIN, doc, record.sigs, next.keys).size;
  if (byCurrent < current.trust.threshold || byNext < next.threshold) {
    throw new FleetplanError(
      "untrusted_signer",
      `trust version ${doc.version}: ${byCurrent} of ${current.trust.threshold} required signatures ` +
        `from version ${current.version}'s keys, ${byNext} of ${next.threshold} from its own keys`,
    );
  }
  return { version: doc.version, trust: next, expires: doc.expires };
};

/**
 * The ids of the keys of `keys` whose signature on a trust record verifies: what a record's `sigs`
 * claims is store content (an entry with any key_id may be appended to a valid record), never shown as is.
 */
export const trustSigners = (record: SignedTrust, keys: Map<string, Uint8Array>): string[] => [
  ...validSigners(TRUST_DOMAIN, record.trust, record.sigs, keys),
];

/** A version-1 document (the root) is self-signed: its own threshold of its own keys. */
export const verifyRoot = (record: SignedTrust): TrustState => {
  if (record.trust.version !== 1) throw new FleetplanError("trust_version", `the root is version 1, not ${record.trust.version}`);
  const set = trustSetOf(record.trust);
  return verifyRotation({ version: 0, trust: set, expires: null }, record);
};

/**
 * Walk the chain from `current` through `records` (versions current+1, current+2, … in order).
 * Intermediate documents may have expired (an agent offline for long walks through them, as in
 * TUF); the newest must not have, else nothing is adopted. Returns every state reached, in order.
 */
export const walkChain = (current: TrustState, records: SignedTrust[], now: number): TrustState[] => {
  const reached: TrustState[] = [];
  let state = current;
  for (const record of records) reached.push((state = verifyRotation(state, record)));
  const last = reached.at(-1);
  if (last && last.expires !== null && last.expires <= now) {
    throw new FleetplanError("trust_expired", `trust version ${last.version} expired at ${new Date(last.expires).toISOString()}`);
  }
  return reached;
};

/** The trust file on disk as version 1 of the chain. */
export const rootState = (trust: TrustSet): TrustState => ({ version: 1, trust, expires: null });
