import { domainSeparated } from "./canonical-json.ts";
import { parseNodePublic } from "./keys.ts";
import type { NodePublicKey } from "./keys.ts";
import { sodium } from "./sodium.ts";
import { isValidHostname } from "./wire.ts";

// An enrollment announcement: a new node says who it is (host, node public line, facts) in the
// JSON {"v":1,"announcement":{...},"sig":"<base64 Ed25519>"}, signed by the identity key its own
// node line carries over ENROLL_DOMAIN ‖ canonical JSON of `announcement`. The signature proves
// only that the sender holds that key: the operator decides (`server accept`, by fingerprint).
// Pure: parsing never throws; callers await sodiumReady() first.

/** Domain separation: an announcement signature never passes for a status or envelope signature. */
const ENROLL_DOMAIN = "fleetplan/enroll/v1\0";
/** A few hundred bytes in practice; the NATS bucket refuses larger messages too. */
export const MAX_ENROLLMENT_BYTES = 4096;
/** NATS KV bucket of announcements (key = host), created by `fleetplan store init`. */
export const ENROLL_BUCKET = "fleetplan-enroll";
/** Consul KV prefix of announcements (`fleetplan/enroll/<host>`). */
export const CONSUL_ENROLL_PREFIX = "fleetplan/enroll/";
/** Reply prefix of a bootstrap connection: the one subject tree its credentials may subscribe to (PubAcks). */
export const ENROLL_INBOX_PREFIX = "fleetplan.enroll-inbox";

const MAX_TEXT = 256;

/** What a node tells about itself when it enrolls, shown to the operator who accepts it. */
export interface EnrollFacts {
  os: string;
  kernel: string;
  /** unix seconds (btime of /proc/stat) */
  boot_time: number;
  arch: string;
}

/** A node's signed request to join the inventory, as written to the store. */
export interface Announcement {
  /** The inventory name the node asks for (its agent's hostname setting). */
  host: string;
  /** `fleetplan-node <base64> <key id>`: X25519 ‖ Ed25519 identity. */
  node_key: string;
  /** The OS hostname, for the operator's eyes. */
  hostname: string;
  version: string;
  facts: EnrollFacts;
  /** unix ms */
  issued: number;
}

/** Why a stored value is not a verified announcement; `wrong_host`: read from another host's key. */
export type AnnouncementProblem = "malformed" | "bad_signature" | "wrong_host";

/** An announcement that verified, or why not (with what could be read, for the operator). */
export type ParsedAnnouncement =
  | { ok: true; announcement: Announcement; key: NodePublicKey }
  | { ok: false; reason: AnnouncementProblem; detail: string; announcement: Announcement | null; key: NodePublicKey | null };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): v is string => typeof v === "string" && v.length <= MAX_TEXT && !/[\0-\x1f\x7f]/.test(v);
const sameKeys = (v: Record<string, unknown>, keys: string[]) => Object.keys(v).sort().join() === [...keys].sort().join();

const checkFacts = (v: unknown): v is EnrollFacts =>
  isObject(v) &&
  sameKeys(v, ["os", "kernel", "boot_time", "arch"]) &&
  text(v.os) &&
  text(v.kernel) &&
  text(v.arch) &&
  typeof v.boot_time === "number" &&
  Number.isFinite(v.boot_time);

/** A well-formed announcement body with exactly the known fields (its node key not yet parsed); null otherwise. */
const checkAnnouncement = (v: unknown): Announcement | null => {
  if (!isObject(v) || !sameKeys(v, ["host", "node_key", "hostname", "version", "facts", "issued"])) return null;
  const ok =
    typeof v.host === "string" &&
    isValidHostname(v.host) &&
    text(v.node_key) &&
    text(v.hostname) &&
    text(v.version) &&
    checkFacts(v.facts) &&
    typeof v.issued === "number" &&
    Number.isSafeInteger(v.issued);
  return ok ? (v as unknown as Announcement) : null;
};

/** The exact bytes an announcement signature covers. */
const announcementSignedBytes = (announcement: Announcement): Uint8Array => domainSeparated(ENROLL_DOMAIN, announcement);

/** The wire bytes of an announcement signed with the node identity (Ed25519 secret key); refuses a bad or oversized body. */
export const signAnnouncement = (announcement: Announcement, identityPrivateKey: Uint8Array): Uint8Array => {
  if (checkAnnouncement(announcement) === null) throw new TypeError("announcement: a field is missing, too long or of the wrong type");
  const sig = sodium.crypto_sign_detached(announcementSignedBytes(announcement), identityPrivateKey);
  const record = { v: 1, announcement, sig: sodium.to_base64(sig, sodium.base64_variants.ORIGINAL) };
  const bytes = new TextEncoder().encode(JSON.stringify(record));
  if (bytes.length > MAX_ENROLLMENT_BYTES) throw new TypeError(`announcement: ${bytes.length} bytes, at most ${MAX_ENROLLMENT_BYTES}`);
  return bytes;
};

const refuse = (reason: AnnouncementProblem, detail: string, announcement: Announcement | null = null, key: NodePublicKey | null = null) =>
  ({ ok: false, reason, detail, announcement, key }) as const;

const decodeJson = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
};

const nodeKeyOf = (line: string): NodePublicKey | null => {
  try {
    return parseNodePublic(line, "node_key");
  } catch {
    return null;
  }
};

/**
 * Parse and verify the value read from store key `storeKey`: size first, then shape, then the
 * signature by the identity key of the announcement's own node line, then that it names `storeKey`.
 */
export const parseAnnouncement = (bytes: Uint8Array, storeKey: string): ParsedAnnouncement => {
  if (bytes.length > MAX_ENROLLMENT_BYTES) return refuse("malformed", `${bytes.length} bytes, at most ${MAX_ENROLLMENT_BYTES}`);
  const doc = decodeJson(bytes);
  if (!isObject(doc) || doc.v !== 1 || !sameKeys(doc, ["v", "announcement", "sig"])) {
    return refuse("malformed", "not an announcement record");
  }
  const announcement = checkAnnouncement(doc.announcement);
  if (announcement === null) return refuse("malformed", "a field is missing, unknown or of the wrong type");
  const key = nodeKeyOf(announcement.node_key);
  if (key === null || key.identityKey === null) return refuse("malformed", "node_key is not a fleetplan-node line", announcement);
  let sig: Uint8Array;
  try {
    sig = sodium.from_base64(String(doc.sig), sodium.base64_variants.ORIGINAL);
  } catch {
    return refuse("malformed", "sig is not base64", announcement, key);
  }
  let valid = false;
  try {
    valid = sig.length === 64 && sodium.crypto_sign_verify_detached(sig, announcementSignedBytes(announcement), key.identityKey);
  } catch {
    valid = false;
  }
  if (!valid) return refuse("bad_signature", "the signature does not verify with the announced identity key", announcement, key);
  if (announcement.host !== storeKey) {
    return refuse("wrong_host", `names ${announcement.host} but was read from key ${storeKey}`, announcement, key);
  }
  return { ok: true, announcement, key };
};
