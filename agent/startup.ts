import { mkdirSync, statSync } from "node:fs";
import { FleetplanError } from "../shared/errors.ts";
import { loadNodeKey, loadTrust } from "../shared/key-files.ts";
import type { NodeKeyPair, TrustSet } from "../shared/types.ts";
import type { AgentConfig } from "./config.ts";

/** Create a private directory, or refuse an existing one that others may write to. */
export const ensurePrivateDir = (path: string, what: string): void => {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o022) {
    throw new FleetplanError("insecure_key_file", `${what} ${path} is writable by group or others (mode ${mode.toString(8).padStart(4, "0")}); run: chmod 700 ${path}`);
  }
};

/** Everything the agent must have before it may accept an envelope: keys, trust, private dirs. */
export const loadAgentSecrets = (config: AgentConfig): { nodeKeys: NodeKeyPair; trust: TrustSet } => {
  ensurePrivateDir(config.stateDir, "state dir");
  ensurePrivateDir(config.logDir, "log dir");
  return { nodeKeys: loadNodeKey(config.nodeKeyPath), trust: loadTrust(config.trustPath) };
};
