import { isAbsolute, posix } from "node:path";
import { FleetplanError } from "../../shared/errors.ts";
import type { ExecutorOptions, NormalizedExecutorOptions } from "./types.ts";

const invalid = (option: string, value: unknown, expected: string): FleetplanError =>
  new FleetplanError("invalid_config", `executor option ${option}: ${expected}, got ${JSON.stringify(value)}`);

const positive = (option: string, value: unknown, fallback: number, integer: boolean): number => {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw invalid(option, value, integer ? "a positive integer" : "a positive number");
  }
  return value;
};

const absolute = (option: string, value: unknown): string => {
  if (typeof value !== "string" || !isAbsolute(value)) throw invalid(option, value, "an absolute path");
  return value;
};

// "/srv/app/" and "/srv/app" name the same root; keep one spelling so prefix checks are exact.
const normalizeRoot = (root: unknown): string => {
  const path = posix.normalize(absolute("fileRoots[]", root));
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
};

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The base environment of steps when none is given: only what a shell needs, never the
 * agent's own secrets and sockets (NATS_TOKEN, CONSUL_HTTP_TOKEN, FLEETPLAN_STORE with
 * credentials, CREDENTIALS_DIRECTORY, NOTIFY_SOCKET, ...).
 */
export const minimalStepEnv = (agentEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const passed = (["LC_ALL", "TZ", "USER", "LOGNAME"] as const).filter((name) => agentEnv[name] !== undefined);
  return {
    PATH: agentEnv.PATH ?? DEFAULT_PATH,
    HOME: agentEnv.HOME ?? "/root",
    LANG: agentEnv.LANG ?? "C.UTF-8",
    ...Object.fromEntries(passed.map((name) => [name, agentEnv[name]])),
  };
};

/** Copy the options, fill the defaults and check each one, naming the option and bad value. */
export const normalizeExecutorOptions = (options: ExecutorOptions): NormalizedExecutorOptions => {
  const fileRoots = options.fileRoots ?? ["/"];
  if (!Array.isArray(fileRoots) || fileRoots.length === 0) throw invalid("fileRoots", fileRoots, "a non-empty list of absolute paths");
  const graceMs = options.graceMs ?? 10_000;
  if (typeof graceMs !== "number" || !(graceMs >= 0) || !Number.isFinite(graceMs)) throw invalid("graceMs", graceMs, "a number of ms ≥ 0");
  return {
    logDir: absolute("logDir", options.logDir),
    maxLogBytes: positive("maxLogBytes", options.maxLogBytes, 10 * 1024 * 1024, true),
    keepRunLogs: positive("keepRunLogs", options.keepRunLogs, 50, true),
    graceMs,
    fileRoots: fileRoots.map(normalizeRoot),
    cwd: absolute("cwd", options.cwd ?? "/"),
    env: options.env ? { ...options.env } : minimalStepEnv(process.env),
    defaultStepTimeoutS: positive("defaultStepTimeoutS", options.defaultStepTimeoutS, 3600, false),
  };
};
