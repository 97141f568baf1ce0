import { existsSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { isAbsolute, join } from "node:path";
import { parseDuration } from "../shared/duration.ts";
import { FleetplanError } from "../shared/errors.ts";
import { PRIVATE_FILE, PROTECTED_FILE, readFileChecked } from "../shared/files.ts";
import type { LogLevel } from "../shared/log.ts";
import { normalizeStoreConfig } from "../shared/store-config.ts";
import type { StoreInput } from "../shared/store-config.ts";
import type { EnvelopeLimits, StoreConfig } from "../shared/types.ts";
import { DEFAULT_LIMITS, isValidHostname } from "../shared/wire.ts";

export const DEFAULT_CONFIG_PATH = "/etc/fleetplan/agent.json";
const MAX_PLAN_BYTES = 256 * 1024 * 1024;
const MAX_CLOCK_SKEW_MS = 3_600_000;

/** Everything the agent needs, validated once. */
export interface AgentConfig {
  hostname: string;
  store: StoreConfig;
  nodeKeyPath: string;
  trustPath: string;
  stateDir: string;
  logDir: string;
  /** null: no metrics endpoint */
  metricsListen: { host: string; port: number } | null;
  limits: EnvelopeLimits;
  /** Path prefixes plan files may be written under. */
  fileRoots: string[];
  stepTimeoutS: number;
  stopGraceMs: number;
  runLogMaxBytes: number;
  runLogsKept: number;
  ledgerMaxAgeMs: number;
  ledgerMaxRows: number;
  logLevel: LogLevel;
  /** Where boot time is read from (a file in /proc/stat format). */
  procStat: string;
  /** Mean time between drift checks of the applied plan's files (±20 % jitter); 0: only on demand. */
  driftIntervalMs: number;
}

/** Settings as they come from the config file, env or flags (all optional, strings or numbers). */
export type AgentConfigInput = Partial<{
  hostname: string;
  store: string;
  storeOptions: Omit<StoreInput, "url">;
  nodeKey: string;
  trust: string;
  stateDir: string;
  logDir: string;
  metricsListen: string;
  maxPlanBytes: number;
  clockSkew: string;
  fileRoots: string[];
  stepTimeout: string;
  stopGrace: string;
  runLogMaxBytes: number;
  runLogsKept: number;
  ledgerMaxAge: string;
  ledgerMaxRows: number;
  logLevel: LogLevel;
  driftInterval: string;
}>;

const DEFAULTS = {
  stateDir: "/var/lib/fleetplan",
  logDir: "/var/log/fleetplan",
  metricsListen: "127.0.0.1:9465",
  clockSkew: "5m",
  stepTimeout: "1h",
  stopGrace: "10s",
  runLogMaxBytes: 10 * 1024 * 1024,
  runLogsKept: 50,
  ledgerMaxAge: "90d",
  ledgerMaxRows: 10_000,
  logLevel: "info" as LogLevel,
  driftInterval: "10m",
};

/** Env var → setting. */
export const ENV_VARS: Record<string, keyof AgentConfigInput> = {
  FLEETPLAN_HOSTNAME: "hostname",
  FLEETPLAN_STORE: "store",
  FLEETPLAN_NODE_KEY: "nodeKey",
  FLEETPLAN_TRUST: "trust",
  FLEETPLAN_STATE_DIR: "stateDir",
  FLEETPLAN_LOG_DIR: "logDir",
  FLEETPLAN_METRICS_LISTEN: "metricsListen",
  FLEETPLAN_LOG_LEVEL: "logLevel",
};

const KNOWN = new Set<string>([
  ...Object.keys(DEFAULTS),
  "hostname",
  "store",
  "storeOptions",
  "nodeKey",
  "trust",
  "maxPlanBytes",
  "fileRoots",
]);

/** A password or token in the config (store options, or user:pass in the store URL). */
const holdsSecret = (value: Record<string, unknown>): boolean => {
  const options = (value.storeOptions ?? {}) as Record<string, unknown>;
  const url = typeof value.store === "string" ? value.store : "";
  return options.pass !== undefined || options.token !== undefined || /\/\/[^/@]*:[^/@]*@/.test(url);
};

/** Read the JSON config file; a missing default file is fine, a missing explicit one is not. */
export const readConfigFile = (path: string | undefined, problems: string[]): AgentConfigInput => {
  const file = path ?? DEFAULT_CONFIG_PATH;
  if (!existsSync(file)) {
    if (path) problems.push(`config: ${file} does not exist`);
    return {};
  }
  // It decides what runs as root (state dir, trust file): checked like the trust file, and
  // like a private key when it holds a store secret.
  const { data, mode } = readFileChecked(file, "config", PROTECTED_FILE);
  try {
    const value = JSON.parse(data.toString("utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object");
    for (const key of Object.keys(value)) if (!KNOWN.has(key)) problems.push(`config ${file}: unknown setting ${JSON.stringify(key)}`);
    if (mode & PRIVATE_FILE.forbidden && holdsSecret(value)) {
      const shown = (mode & 0o777).toString(8).padStart(4, "0");
      throw new FleetplanError(
        "insecure_key_file",
        `config ${file} holds a store password or token and is readable by group or others (mode ${shown}); run: chmod 600 ${file}`,
      );
    }
    return value as AgentConfigInput;
  } catch (error) {
    if (error instanceof FleetplanError) throw error;
    problems.push(`config ${file}: ${(error as Error).message}`);
    return {};
  }
};

/** Settings from FLEETPLAN_* env vars. */
export const configFromEnv = (env: NodeJS.ProcessEnv): AgentConfigInput =>
  Object.fromEntries(
    Object.entries(ENV_VARS)
      .filter(([name]) => env[name])
      .map(([name, key]) => [key, env[name]]),
  );

const parseListen = (value: string, problems: string[]): AgentConfig["metricsListen"] => {
  if (value === "off") return null;
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    problems.push(`metrics-listen: ${JSON.stringify(value)} must be HOST:PORT (or "off")`);
    return null;
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port };
};

const duration = (value: string, name: string, problems: string[]): number => {
  try {
    return parseDuration(value, name);
  } catch (error) {
    problems.push((error as Error).message);
    return 0;
  }
};

// 0 turns periodic checks off; below a second they would only burn CPU.
const driftInterval = (value: string, problems: string[]): number => {
  const ms = duration(value, "driftInterval", problems);
  if (ms > 0 && ms < 1000) problems.push(`driftInterval: ${JSON.stringify(value)} must be 0 (checks on demand only) or at least 1s`);
  return ms;
};

const positiveInt = (value: unknown, name: string, problems: string[]): number => {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) problems.push(`${name}: ${JSON.stringify(value)} must be a positive integer`);
  return value as number;
};

/**
 * Merge file < env < flags over the defaults, validate everything, and throw one
 * `invalid_config` error listing every problem.
 */
export const normalizeAgentConfig = (
  layers: AgentConfigInput[],
  env: NodeJS.ProcessEnv = process.env,
  initialProblems: string[] = [],
): AgentConfig => {
  const problems = [...initialProblems];
  const input: AgentConfigInput = Object.assign({}, ...layers);
  const merged = { ...DEFAULTS, ...input };
  const hostname = input.hostname ?? osHostname();
  if (!isValidHostname(hostname)) problems.push(`hostname: ${JSON.stringify(hostname)} is not a valid hostname`);
  const store = normalizeStoreConfig({ ...input.storeOptions, url: input.store }, problems, env);
  const creds = env.CREDENTIALS_DIRECTORY;
  const nodeKeyPath = input.nodeKey ?? (creds ? join(creds, "node.key") : "/etc/fleetplan/node.key");
  const trustPath = input.trust ?? (creds ? join(creds, "trust") : "/etc/fleetplan/trust");
  for (const [name, path] of [
    ["state-dir", merged.stateDir],
    ["log-dir", merged.logDir],
    ["node-key", nodeKeyPath],
    ["trust", trustPath],
  ] as const) {
    if (!isAbsolute(path)) problems.push(`${name}: ${JSON.stringify(path)} must be an absolute path`);
  }
  const fileRoots = input.fileRoots ?? ["/"];
  if (!Array.isArray(fileRoots) || fileRoots.some((r) => typeof r !== "string" || !isAbsolute(r)))
    problems.push("fileRoots: must be a list of absolute paths");
  if (!["debug", "info", "warn", "error"].includes(merged.logLevel))
    problems.push(`log-level: ${JSON.stringify(merged.logLevel)} must be debug, info, warn or error`);
  const limits: EnvelopeLimits = {
    ...DEFAULT_LIMITS,
    maxPlanBytes: positiveInt(input.maxPlanBytes ?? DEFAULT_LIMITS.maxPlanBytes, "maxPlanBytes", problems),
    clockSkewMs: duration(merged.clockSkew, "clockSkew", problems),
  };
  // Bounds that keep the checks meaningful: memory per plan, and `from_future` switched on.
  if (limits.maxPlanBytes > MAX_PLAN_BYTES)
    problems.push(`maxPlanBytes: ${limits.maxPlanBytes} is above the ${MAX_PLAN_BYTES} bytes an agent will hold in memory`);
  if (limits.clockSkewMs > MAX_CLOCK_SKEW_MS)
    problems.push(`clockSkew: ${merged.clockSkew} is above 1h, which would all but disable the from_future check`);
  limits.maxEnvelopeBytes = Math.max(DEFAULT_LIMITS.maxEnvelopeBytes, limits.maxPlanBytes + 1024 * 1024);
  const config: AgentConfig = {
    hostname,
    store,
    nodeKeyPath,
    trustPath,
    stateDir: merged.stateDir,
    logDir: merged.logDir,
    metricsListen: parseListen(merged.metricsListen, problems),
    limits,
    fileRoots,
    stepTimeoutS: duration(merged.stepTimeout, "stepTimeout", problems) / 1000,
    stopGraceMs: duration(merged.stopGrace, "stopGrace", problems),
    runLogMaxBytes: positiveInt(merged.runLogMaxBytes, "runLogMaxBytes", problems),
    runLogsKept: positiveInt(merged.runLogsKept, "runLogsKept", problems),
    ledgerMaxAgeMs: duration(merged.ledgerMaxAge, "ledgerMaxAge", problems),
    ledgerMaxRows: positiveInt(merged.ledgerMaxRows, "ledgerMaxRows", problems),
    logLevel: merged.logLevel,
    procStat: env.FLEETPLAN_PROC_STAT ?? "/proc/stat",
    driftIntervalMs: driftInterval(String(merged.driftInterval), problems),
  };
  if (problems.length > 0) {
    throw new FleetplanError("invalid_config", `invalid agent configuration:\n  - ${problems.join("\n  - ")}`);
  }
  return config;
};
