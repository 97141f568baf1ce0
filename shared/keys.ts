import { FleetplanError } from "./errors.ts";
import { toHex } from "./hex.ts";
import { sodium } from "./sodium.ts";
import type { AdminKeyPair, NodeKeyPair, PublicKeyRef, TrustSet } from "./types.ts";

// Text forms, one line each, copy-pasteable like OpenSSH keys: `<type> <base64> [key id]`.
export const KeyType = {
  AdminPublic: "fleetplan-admin-ed25519",
  AdminPrivate: "fleetplan-admin-ed25519-private",
  /** Old node public key form: X25519 only, no identity key (status records from such a host are never evidence). */
  NodePublic: "fleetplan-node-x25519",
  NodePrivate: "fleetplan-node-x25519-private",
  /** Node public key: X25519 (sealing) ‖ Ed25519 identity (status records); key id of the X25519 part. */
  Node: "fleetplan-node",
} as const;
export type KeyType = (typeof KeyType)[keyof typeof KeyType];

const KEY_LENGTH: Record<KeyType, number> = {
  [KeyType.AdminPublic]: 32,
  [KeyType.AdminPrivate]: 64,
  [KeyType.NodePublic]: 32,
  [KeyType.NodePrivate]: 32,
  [KeyType.Node]: 64,
};

/** BLAKE2b key of the node identity derivation: 26 bytes, fixed forever (existing node keys depend on it). */
const NODE_IDENTITY_KEY = new TextEncoder().encode("fleetplan/node-identity/v1");

/** Key id: first 8 bytes of BLAKE2b-256(public key), hex (docs/protocol.md). */
export const keyIdOf = (publicKey: Uint8Array): string => toHex(sodium.crypto_generichash(32, publicKey, null).subarray(0, 8));

/** BLAKE2b-256 hex of arbitrary bytes (the plan hash). */
export const blake2bHex = (bytes: Uint8Array): string => toHex(sodium.crypto_generichash(32, bytes, null));

export const generateAdminKey = (): AdminKeyPair => {
  const { publicKey, privateKey } = sodium.crypto_sign_keypair();
  return { keyId: keyIdOf(publicKey), publicKey, privateKey };
};

/**
 * The node's Ed25519 identity, derived from its X25519 private key so every existing node key file
 * gets one: seed = BLAKE2b-256 keyed with "fleetplan/node-identity/v1" over the private key.
 */
export const nodeIdentityFromPrivate = (privateKey: Uint8Array): NodeKeyPair["identity"] => {
  const seed = sodium.crypto_generichash(32, privateKey, NODE_IDENTITY_KEY);
  const { publicKey, privateKey: signingKey } = sodium.crypto_sign_seed_keypair(seed);
  seed.fill(0);
  return { publicKey, privateKey: signingKey };
};

export const generateNodeKey = (): NodeKeyPair => nodeKeyFromPrivate(sodium.crypto_box_keypair().privateKey);

/** Deterministic keys from a 32-byte seed: test vectors only. */
export const adminKeyFromSeed = (seed: Uint8Array): AdminKeyPair => {
  const { publicKey, privateKey } = sodium.crypto_sign_seed_keypair(seed);
  return { keyId: keyIdOf(publicKey), publicKey, privateKey };
};

export const nodeKeyFromSeed = (seed: Uint8Array): NodeKeyPair => nodeKeyFromPrivate(sodium.crypto_box_seed_keypair(seed).privateKey);

/** The key id a public key line carries: a node line names its X25519 part (what envelopes are sealed to). */
const lineKeyId = (type: KeyType, key: Uint8Array): string | null =>
  type === KeyType.Node ? keyIdOf(key.subarray(0, 32)) : type === KeyType.AdminPublic || type === KeyType.NodePublic ? keyIdOf(key) : null;

/** One text line for a key; public keys carry their key id as a trailing comment. */
export const formatKey = (type: KeyType, key: Uint8Array): string => {
  const b64 = sodium.to_base64(key, sodium.base64_variants.ORIGINAL);
  const keyId = lineKeyId(type, key);
  return keyId === null ? `${type} ${b64}` : `${type} ${b64} ${keyId}`;
};

/** The node's public line, `fleetplan-node <base64(x25519 ‖ ed25519)> <key id>`: what the coordinator's inventory takes. */
export const formatNodePublic = (publicKey: Uint8Array, identityKey: Uint8Array): string => {
  const both = new Uint8Array(64);
  both.set(publicKey, 0);
  both.set(identityKey, 32);
  return formatKey(KeyType.Node, both);
};

/** A node public key from an inventory: the identity key is null for the old X25519-only form. */
export interface NodePublicKey extends PublicKeyRef {
  identityKey: Uint8Array | null;
}

/** Either node public line form; `source` names it in errors. */
export const parseNodePublic = (text: string, source: string): NodePublicKey => {
  if (text.trim().startsWith(`${KeyType.NodePublic} `)) {
    const publicKey = parseKey(text, KeyType.NodePublic, source);
    return { keyId: keyIdOf(publicKey), publicKey, identityKey: null };
  }
  const both = parseKey(text, KeyType.Node, source);
  const publicKey = both.slice(0, 32);
  return { keyId: keyIdOf(publicKey), publicKey, identityKey: both.slice(32) };
};

/** The inventory's normalised line for a parsed node public key, in the form it was given. */
export const formatNodePublicKey = (key: NodePublicKey): string =>
  key.identityKey === null ? formatKey(KeyType.NodePublic, key.publicKey) : formatNodePublic(key.publicKey, key.identityKey);

/** Parse one key line of the expected type; `source` names it in errors (never the key). */
export const parseKey = (text: string, expected: KeyType, source: string): Uint8Array => {
  const [type, b64, keyId, ...rest] = text.trim().split(/\s+/);
  if (type !== expected) {
    // Name what was found only when it is a key type: the first token may be a bare secret.
    const found = type !== undefined && /^fleetplan-[a-z0-9-]{1,40}$/.test(type) ? type : "no key type";
    throw new FleetplanError("bad_key", `${source}: expected a ${expected} key, found ${found}`);
  }
  let key: Uint8Array;
  try {
    key = sodium.from_base64(b64 ?? "", sodium.base64_variants.ORIGINAL);
  } catch {
    throw new FleetplanError("bad_key", `${source}: key is not valid base64`);
  }
  if (key.length !== KEY_LENGTH[expected]) {
    throw new FleetplanError("bad_key", `${source}: ${expected} key must be ${KEY_LENGTH[expected]} bytes, got ${key.length}`);
  }
  const expectedId = lineKeyId(expected, key) ?? keyIdOf(key);
  if (keyId !== undefined && rest.length === 0 && keyId !== expectedId) {
    throw new FleetplanError("bad_key", `${source}: key id ${keyId} does not match the key (${expectedId})`);
  }
  return key;
};

/** An Ed25519 secret key is seed ‖ public key: re-derive from the seed so a corrupt file is caught. */
export const adminKeyFromPrivate = (privateKey: Uint8Array, source = "admin key"): AdminKeyPair => {
  const { publicKey } = sodium.crypto_sign_seed_keypair(privateKey.subarray(0, 32));
  if (sodium.compare(publicKey, privateKey.subarray(32)) !== 0)
    throw new FleetplanError("bad_key", `${source}: corrupt Ed25519 key (public half does not match the seed)`);
  return { keyId: keyIdOf(publicKey), publicKey, privateKey };
};

/** The node's key pair and derived identity from its X25519 private key (a node.key file). */
export const nodeKeyFromPrivate = (privateKey: Uint8Array): NodeKeyPair => {
  const publicKey = sodium.crypto_scalarmult_base(privateKey);
  return { keyId: keyIdOf(publicKey), publicKey, privateKey, identity: nodeIdentityFromPrivate(privateKey) };
};

export const publicRef = (publicKey: Uint8Array): PublicKeyRef => ({ keyId: keyIdOf(publicKey), publicKey });

/**
 * Trust file: one admin public key per line, `#` comments, optional `threshold K`.
 * The threshold must be between 1 and the number of distinct keys.
 */
export const parseTrust = (text: string, source: string): TrustSet => {
  const keys = new Map<string, Uint8Array>();
  let threshold = 1;
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const where = `${source}:${index + 1}`;
    const match = /^threshold\s+(\S+)$/.exec(line);
    if (match) {
      threshold = Number(match[1]);
      if (!Number.isInteger(threshold) || threshold < 1) {
        throw new FleetplanError("bad_key", `${where}: threshold must be a positive integer, got ${JSON.stringify(match[1])}`);
      }
      return;
    }
    const key = parseKey(line, KeyType.AdminPublic, where);
    keys.set(keyIdOf(key), key);
  });
  if (keys.size === 0) throw new FleetplanError("bad_key", `${source}: no admin public keys`);
  if (threshold > keys.size) {
    throw new FleetplanError("bad_key", `${source}: threshold ${threshold} exceeds the ${keys.size} distinct trusted keys`);
  }
  return { keys, threshold };
};

export const formatTrust = (keys: Uint8Array[], threshold = 1): string =>
  [
    `# fleetplan trust set: admin keys this agent accepts`,
    `threshold ${threshold}`,
    ...keys.map((k) => formatKey(KeyType.AdminPublic, k)),
    "",
  ].join("\n");
