import { accessSync, constants, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { FleetplanError } from "../shared/errors.ts";
import { readProtectedFile } from "../shared/files.ts";
import { normalizeStoreConfig } from "../shared/store-config.ts";
import type { StoreConfig } from "../shared/types.ts";

/** Coordinator settings: global flags over FLEETPLAN_* env vars over the config file beside the db over defaults. */
export interface CoordinatorConfig {
  db: string;
  store: StoreConfig;
  /** Admin private keys that sign every envelope (several for k-of-n trust sets). */
  adminKeys: string[];
  /** Where push and status read convergence when no --prometheus is given. */
  prometheus?: string;
  json: boolean;
  /** Every setting in force and where it came from, for `config show`. */
  sources: SettingSource[];
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
  prometheus?: string;
  json?: boolean;
}

/** The settings `fleetplan init` remembers, each with the env var that overrides the file. */
export const REMEMBERED = {
  store: "FLEETPLAN_STORE",
  replicas: "FLEETPLAN_REPLICAS",
  "notify-prefix": "FLEETPLAN_NOTIFY_PREFIX",
  creds: "FLEETPLAN_CREDS",
  "tls-ca": "FLEETPLAN_TLS_CA",
  "tls-cert": "FLEETPLAN_TLS_CERT",
  "tls-key": "FLEETPLAN_TLS_KEY",
  prometheus: "FLEETPLAN_PROMETHEUS",
} as const;
export type RememberedName = keyof typeof REMEMBERED;
export type ConfigFileSettings = Partial<Record<RememberedName, string>>;

/** The config file as read: its path and the settings in it (none when there is no file). */
export interface ConfigFile {
  path: string;
  settings: ConfigFileSettings;
}

/** One setting in force: `flag`, `env FLEETPLAN_…`, `file <path>` or `default`. */
export interface SettingSource {
  name: string;
  value: string | null;
  source: string;
}

/** `init` keeps the settings beside the database, where every later command with the same --db finds them. */
export const configFilePath = (db: string): string => join(dirname(db), "fleetplan.json");

/** The database path: flag, env, default (the config file is found beside it, so it cannot name it). */
export const databasePath = (flags: CoordinatorFlags, env: NodeJS.ProcessEnv): string =>
  resolve(flags.db ?? (env.FLEETPLAN_DB || "fleetplan.db"));

/** Parse the config file's text: a JSON object of known settings, each a string (replicas may be a number). */
export const parseConfigFile = (path: string, text: string): ConfigFileSettings => {
  const invalid = (problem: string) => new FleetplanError("invalid_config", `config file ${path}${problem}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid(` is not valid JSON (${(error as Error).message}); fix it or rerun \`fleetplan init\``);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw invalid(" must hold a JSON object of settings; fix it or rerun `fleetplan init`");
  }
  const settings: ConfigFileSettings = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in REMEMBERED)) {
      throw invalid(`: unknown key ${JSON.stringify(key)}; known: ${Object.keys(REMEMBERED).join(", ")}`);
    }
    if (typeof value !== "string" && !(key === "replicas" && typeof value === "number")) {
      throw invalid(`: key ${JSON.stringify(key)} must be a string, not ${JSON.stringify(value)}`);
    }
    settings[key as RememberedName] = String(value);
  }
  return settings;
};

/** The config file beside the database, read with the guarded reader (never writable by others); none is no settings. */
export const loadConfigFile = (db: string): ConfigFile => {
  const path = configFilePath(db);
  if (!existsSync(path)) return { path, settings: {} };
  return { path, settings: parseConfigFile(path, readProtectedFile(path, "config file")) };
};

/** True for an http(s) URL: Prometheus is reached over HTTP. */
export const isHttpUrl = (text: string): boolean => {
  try {
    return ["http:", "https:"].includes(new URL(text).protocol);
  } catch {
    return false;
  }
};

interface Picked {
  value: string;
  /** How a problem names where the value came from. */
  origin: string;
  source: string;
}

// Flag over env var over file: the one place precedence is decided.
const pickSetting = (name: RememberedName, flags: CoordinatorFlags, env: NodeJS.ProcessEnv, file: ConfigFile): Picked | undefined => {
  const variable = REMEMBERED[name];
  const flag = flags[name];
  if (flag !== undefined) return { value: flag, origin: `--${name}`, source: "flag" };
  if (env[variable]) return { value: env[variable], origin: `$${variable}`, source: `env ${variable}` };
  const saved = file.settings[name];
  if (saved !== undefined) return { value: saved, origin: `${file.path} "${name}"`, source: `file ${file.path}` };
  return undefined;
};

/** What each store credential or TLS file must be. */
const FILE_SETTINGS = [
  ["creds", "the coordinator.creds written by `fleetplan store credentials`"],
  ["tls-ca", "the CA certificate (PEM) that signed the server's certificate"],
  ["tls-cert", "this client's certificate (PEM)"],
  ["tls-key", "this client's private key (PEM, mode 0600)"],
] as const;

// Checked before anything connects: a typo in a path is a usage error (exit 2), not an unreachable store.
const readableFiles = (picked: Partial<Record<RememberedName, Picked>>, problems: string[]) => {
  const found: Partial<Record<(typeof FILE_SETTINGS)[number][0], string>> = {};
  if ((picked["tls-cert"] === undefined) !== (picked["tls-key"] === undefined)) {
    problems.push("--tls-cert and --tls-key go together: give both (a client certificate and its key) or neither");
  }
  for (const [name, what] of FILE_SETTINGS) {
    const given = picked[name];
    if (given === undefined) continue;
    const path = resolve(given.value);
    try {
      accessSync(path, constants.R_OK);
      found[name] = path;
    } catch (error) {
      problems.push(`${given.origin}: cannot read ${path} (${(error as NodeJS.ErrnoException).code}); give ${what}`);
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

/** A URL as shown by `config show`: any password replaced. */
const redact = (value: string): string => value.replace(/\/\/([^/@:]*):[^/@]*@/g, "//$1:***@");

/**
 * Validate once; one `invalid_config` error lists every problem. Precedence: flag > env var >
 * config file (`file`, read beside the database unless given) > default.
 */
export const normalizeCoordinatorConfig = (
  flags: CoordinatorFlags,
  env: NodeJS.ProcessEnv = process.env,
  file: ConfigFile = loadConfigFile(databasePath(flags, env)),
): CoordinatorConfig => {
  const problems: string[] = [];
  const db = databasePath(flags, env);
  const picked: Partial<Record<RememberedName, Picked>> = {};
  for (const name of Object.keys(REMEMBERED) as RememberedName[]) {
    const found = pickSetting(name, flags, env, file);
    if (found !== undefined) picked[name] = found;
  }
  const files = readableFiles(picked, problems);
  const { prometheus, replicas } = picked;
  if (prometheus !== undefined && !isHttpUrl(prometheus.value)) {
    problems.push(`${prometheus.origin}: ${JSON.stringify(prometheus.value)} is not an http(s) URL`);
  }
  const input = {
    url: picked.store?.value,
    ...(replicas !== undefined && { replicas: Number(replicas.value) }),
    ...(picked["notify-prefix"] !== undefined && { notifyPrefix: picked["notify-prefix"].value }),
    ...files,
  };
  const store = normalizeStoreConfig(input, problems, env);
  const fromEnv = env.FLEETPLAN_ADMIN_KEY ? env.FLEETPLAN_ADMIN_KEY.split(",") : [];
  const keysSource = flags["admin-key"]?.length ? "flag" : fromEnv.length ? "env FLEETPLAN_ADMIN_KEY" : "default";
  const adminKeys = (flags["admin-key"]?.length ? flags["admin-key"] : fromEnv.length ? fromEnv : [defaultAdminKey(db)]).map((p) =>
    resolve(p),
  );
  if (problems.length > 0) throw new FleetplanError("invalid_config", `invalid configuration:\n  - ${problems.join("\n  - ")}`);
  const defaults: Partial<Record<RememberedName, string>> = {
    store: "nats://127.0.0.1:4222",
    replicas: String(store.replicas),
    "notify-prefix": store.notifyPrefix,
  };
  const sources: SettingSource[] = [
    { name: "db", value: db, source: flags.db !== undefined ? "flag" : env.FLEETPLAN_DB ? "env FLEETPLAN_DB" : "default" },
    { name: "admin-key", value: adminKeys.join(","), source: keysSource },
    ...(Object.keys(REMEMBERED) as RememberedName[]).map((name) => {
      const value = picked[name]?.value ?? defaults[name];
      return { name, value: value === undefined ? null : redact(value), source: picked[name]?.source ?? "default" };
    }),
  ];
  return { db, store, adminKeys, ...(prometheus !== undefined && { prometheus: prometheus.value }), json: flags.json ?? false, sources };
};

/** `fleetplan init` keeps the admin key beside the database unless told otherwise. */
export const defaultAdminKey = (db: string): string => join(dirname(db), "keys", "admin.key");
