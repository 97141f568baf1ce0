import { mkdirSync, statSync } from "node:fs";
import { FleetplanError } from "../shared/errors.ts";
import { checkOwner, checkParents, readPrivateFile } from "../shared/files.ts";
import { loadNodeKey, loadTrust } from "../shared/key-files.ts";
import type { NodeKeyPair, TrustSet } from "../shared/types.ts";
import type { AgentConfig } from "./config.ts";

/**
 * Create a private directory, or refuse an existing one that another user could change: owned
 * by someone else, writable by group or others, or inside a directory that is (whoever can
 * remove the ledger can make an envelope run twice).
 */
export const ensurePrivateDir = (path: string, what: string): void => {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  checkParents(path, what);
  const { mode, uid } = statSync(path);
  checkOwner(path, what, uid);
  if (mode & 0o022) {
    throw new FleetplanError(
      "insecure_key_file",
      `${what} ${path} is writable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, "0")}); run: chmod 700 ${path}`,
    );
  }
};

/** Everything the agent must have before it may accept an envelope: keys, trust, private dirs. */
export const loadAgentSecrets = (config: AgentConfig): { nodeKeys: NodeKeyPair; trust: TrustSet } => {
  ensurePrivateDir(config.stateDir, "state dir");
  ensurePrivateDir(config.logDir, "log dir");
  // Store secrets are read again at each connect; a missing or unsafe one is a config error now,
  // not a retry loop forever.
  if (config.store.credsFile !== undefined) readPrivateFile(config.store.credsFile, "NATS credentials file");
  if (config.store.tls?.key !== undefined) readPrivateFile(config.store.tls.key, "TLS key");
  return { nodeKeys: loadNodeKey(config.nodeKeyPath), trust: loadTrust(config.trustPath) };
};
