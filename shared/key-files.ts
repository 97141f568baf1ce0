import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { FleetplanError } from "./errors.ts";
import { readPrivateFile, readProtectedFile, readTextFile, writeFileAtomic } from "./files.ts";
import {
  adminKeyFromPrivate, formatKey, generateAdminKey, generateNodeKey, keyIdOf, KeyType, nodeKeyFromPrivate, parseKey, parseTrust,
} from "./keys.ts";
import type { AdminKeyPair, NodeKeyPair, PublicKeyRef, TrustSet } from "./types.ts";


export const loadAdminKey = (path: string): AdminKeyPair =>
  adminKeyFromPrivate(parseKey(readPrivateFile(path, "admin key"), KeyType.AdminPrivate, path), path);

export const loadNodeKey = (path: string): NodeKeyPair =>
  nodeKeyFromPrivate(parseKey(readPrivateFile(path, "node key"), KeyType.NodePrivate, path));

/** Parse a node public key given as a file path or as the key text itself. */
export const loadNodePublicKey = (pathOrText: string): PublicKeyRef => {
  const text = pathOrText.trim().startsWith(KeyType.NodePublic) ? pathOrText : readTextFile(pathOrText, "node public key");
  const publicKey = parseKey(text, KeyType.NodePublic, pathOrText.startsWith(KeyType.NodePublic) ? "node key" : pathOrText);
  return { keyId: keyIdOf(publicKey), publicKey };
};

export const loadTrust = (path: string): TrustSet => parseTrust(readProtectedFile(path, "trust file"), path);

export interface WrittenKey {
  keyId: string;
  privatePath: string;
  publicPath: string;
  publicText: string;
}

/** The public half's path beside a private key file: a trailing `.key` becomes `.pub`, else `.pub` is appended. */
const publicKeyPath = (privatePath: string): string => privatePath.replace(/\.key$/, "") + ".pub";

/** Generate a key pair at exactly `privatePath` (0600) and publicKeyPath() beside it; never overwrites a key. */
export const writeNewKeyAt = (privatePath: string, kind: "admin" | "node"): WrittenKey => {
  const dir = dirname(privatePath);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new FleetplanError("conflict", `${dir} exists and is not a directory`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const publicPath = publicKeyPath(privatePath);
  if (existsSync(privatePath)) throw new FleetplanError("conflict", `${privatePath} already exists; refusing to overwrite a key`);
  const pair = kind === "admin" ? generateAdminKey() : generateNodeKey();
  const [priv, pub] = kind === "admin" ? [KeyType.AdminPrivate, KeyType.AdminPublic] : [KeyType.NodePrivate, KeyType.NodePublic];
  const publicText = formatKey(pub, pair.publicKey);
  writeFileAtomic(privatePath, `${formatKey(priv, pair.privateKey)}\n`, 0o600);
  writeFileAtomic(publicPath, `${publicText}\n`, 0o644);
  return { keyId: pair.keyId, privatePath, publicPath, publicText };
};

/** Generate a key pair into DIR/KIND.key (0600) and DIR/KIND.pub; never overwrites a key. */
export const writeNewKey = (dir: string, kind: "admin" | "node"): WrittenKey => writeNewKeyAt(join(dir, `${kind}.key`), kind);
