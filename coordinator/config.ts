import { accessSync, constants } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { FleetplanError } from "../shared/errors.ts";
import { normalizeStoreConfig } from "../shared/store-config.ts";
import type { StoreConfig } from "../shared/types.ts";

/** Coordinator settings: global flags over FLEETPLAN_* env vars over defaults. */
export interface CoordinatorConfig {
  db: string;
  store: StoreConfig;
  /** Admin private keys that sign every envelope (several for k-of-n trust sets). */
  adminKeys: string[];
  json: boolean;
}

export interface CoordinatorFlags {
  db?: string;
  store?: string;
  "admin-key"?: string[];
  replicas?: string;
  creds?: string;
  "tls-ca"?: string;
  "tls-cert"?: string;
  "tls-key"?: string;
  "notify-prefix"?: string;
  json?: boolean;
}

/** Store credential and TLS files: flag, else env var; each must be readable (the mode is checked on connect). */
const FILE_SETTINGS = [
  ["creds", "FLEETPLAN_CREDS", "the coordinator.creds written by `fleetplan store credentials`"],
  ["tls-ca", "FLEETPLAN_TLS_CA", "the CA certificate (PEM) that signed the server's certificate"],
  ["tls-cert", "FLEETPLAN_TLS_CERT", "this client's certificate (PEM)"],
  ["tls-key", "FLEETPLAN_TLS_KEY", "this client's private key (PEM, mode 0600)"],
] as const;

// Checked before anything connects: a typo in a path is a usage error (exit 2), not an unreachable store.
const readableFiles = (flags: CoordinatorFlags, env: NodeJS.ProcessEnv, problems: string[]) => {
  const found: Partial<Record<(typeof FILE_SETTINGS)[number][0], string>> = {};
  const givenOf = (flag: (typeof FILE_SETTINGS)[number][0], variable: string) => flags[flag] ?? (env[variable] || undefined);
  if ((givenOf("tls-cert", "FLEETPLAN_TLS_CERT") === undefined) !== (givenOf("tls-key", "FLEETPLAN_TLS_KEY") === undefined)) {
    problems.push("--tls-cert and --tls-key go together: give both (a client certificate and its key) or neither");
  }
  for (const [flag, variable, what] of FILE_SETTINGS) {
    const given = givenOf(flag, variable);
    if (given === undefined) continue;
    const path = resolve(given);
    try {
      accessSync(path, constants.R_OK);
      found[flag] = path;
    } catch (error) {
      const source = flags[flag] !== undefined ? `--${flag}` : `$${variable}`;
      problems.push(`${source}: cannot read ${path} (${(error as NodeJS.ErrnoException).code}); give ${what}`);
    }
  }
  return {
    ...(found.creds !== undefined && { credsFile: found.creds }),
    ...((found["tls-ca"] ?? found["tls-cert"]) !== undefined && {
      tls: {
        ...(found["tls-ca"] && { ca: found["tls-ca"] }),
        ...(found["tls-cert"] && found["tls-key"] && { cert: found["tls-cert"], key: found["tls-key"] }),
      },
    }),
  };
};

/** Validate once; one `invalid_config` error lists every problem. */
export const normalizeCoordinatorConfig = (flags: CoordinatorFlags, env: NodeJS.ProcessEnv = process.env): CoordinatorConfig => {
  const problems: string[] = [];
  const db = resolve(flags.db ?? env.FLEETPLAN_DB ?? "fleetplan.db");
  const replicas = flags.replicas ?? env.FLEETPLAN_REPLICAS;
  const files = readableFiles(flags, env, problems);
  const notifyPrefix = flags["notify-prefix"] ?? (env.FLEETPLAN_NOTIFY_PREFIX || undefined);
  const input = {
    url: flags.store ?? env.FLEETPLAN_STORE, ...(replicas !== undefined && { replicas: Number(replicas) }),
    ...(notifyPrefix !== undefined && { notifyPrefix }), ...files,
  };
  const store = normalizeStoreConfig(input, problems, env);
  const fromEnv = env.FLEETPLAN_ADMIN_KEY ? env.FLEETPLAN_ADMIN_KEY.split(",") : [];
  const adminKeys = (flags["admin-key"]?.length ? flags["admin-key"] : fromEnv.length ? fromEnv : [defaultAdminKey(db)]).map((p) => resolve(p));
  if (problems.length > 0) throw new FleetplanError("invalid_config", `invalid configuration:\n  - ${problems.join("\n  - ")}`);
  return { db, store, adminKeys, json: flags.json ?? false };
};

/** `fleetplan init` keeps the admin key beside the database unless told otherwise. */
export const defaultAdminKey = (db: string): string => join(dirname(db), "keys", "admin.key");
