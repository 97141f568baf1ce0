import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { FleetplanError } from "./errors.ts";
import { readPrivateFile, readProtectedFile, readTextFile, writeFileAtomic } from "./files.ts";
import {
  adminKeyFromPrivate,
  formatKey,
  formatNodePublic,
  generateAdminKey,
  generateNodeKey,
  KeyType,
  nodeKeyFromPrivate,
  parseKey,
  parseNodePublic,
  parseTrust,
} from "./keys.ts";
import type { NodePublicKey } from "./keys.ts";
import type { AdminKeyPair, NodeKeyPair, TrustSet } from "./types.ts";

export const loadAdminKey = (path: string): AdminKeyPair =>
  adminKeyFromPrivate(parseKey(readPrivateFile(path, "admin key"), KeyType.AdminPrivate, path), path);

export const loadNodeKey = (path: string): NodeKeyPair =>
  nodeKeyFromPrivate(parseKey(readPrivateFile(path, "node key"), KeyType.NodePrivate, path));

/** Is this the text of a node public key line (either form) rather than a path to one? */
export const isNodePublicText = (pathOrText: string): boolean => /^fleetplan-node[a-z0-9-]*\s/.test(pathOrText.trim());

/** Parse a node public key (new `fleetplan-node` or old X25519-only form) given as a file path or as the key text itself. */
export const loadNodePublicKey = (pathOrText: string): NodePublicKey => {
  const isText = isNodePublicText(pathOrText);
  const text = isText ? pathOrText : readTextFile(pathOrText, "node public key");
  return parseNodePublic(text, isText ? "node key" : pathOrText);
};

export const loadTrust = (path: string): TrustSet => parseTrust(readProtectedFile(path, "trust file"), path);

export interface WrittenKey {
  keyId: string;
  privatePath: string;
  publicPath: string;
  publicText: string;
}

/** The public half's path beside a private key file: a trailing `.key` becomes `.pub`, else `.pub` is appended. */
const publicKeyPath = (privatePath: string): string => `${privatePath.replace(/\.key$/, "")}.pub`;

/** Generate a key pair at exactly `privatePath` (0600) and publicKeyPath() beside it; never overwrites a key. */
export const writeNewKeyAt = (privatePath: string, kind: "admin" | "node"): WrittenKey => {
  const dir = dirname(privatePath);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new FleetplanError("conflict", `${dir} exists and is not a directory`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const publicPath = publicKeyPath(privatePath);
  if (existsSync(privatePath)) throw new FleetplanError("conflict", `${privatePath} already exists; refusing to overwrite a key`);
  const node = kind === "node" ? generateNodeKey() : null;
  const pair = node ?? generateAdminKey();
  // A node's public line carries its identity key too (formatNodePublic): status records are verified with it.
  const publicText = node ? formatNodePublic(node.publicKey, node.identity.publicKey) : formatKey(KeyType.AdminPublic, pair.publicKey);
  writeFileAtomic(privatePath, `${formatKey(node ? KeyType.NodePrivate : KeyType.AdminPrivate, pair.privateKey)}\n`, 0o600);
  writeFileAtomic(publicPath, `${publicText}\n`, 0o644);
  return { keyId: pair.keyId, privatePath, publicPath, publicText };
};

/** Generate a key pair into DIR/KIND.key (0600) and DIR/KIND.pub; never overwrites a key. */
export const writeNewKey = (dir: string, kind: "admin" | "node"): WrittenKey => writeNewKeyAt(join(dir, `${kind}.key`), kind);
