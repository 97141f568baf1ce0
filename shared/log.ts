// Structured logs: one JSON object per line on stderr. Secrets never reach here by design
// (plan content and env values are never passed in); the redaction is a second fence.

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_KEY = /(key|secret|token|pass|password|content|env|credential)s?$/i;
const REDACTED = "[redacted]";

/** Drop values under secret-looking keys; keep ids, hashes and key ids (not secret). */
export const redact = (fields: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, SECRET_KEY.test(k) && !/(_id|Id|_ids|Ids)$/.test(k) ? REDACTED : v]));

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  base?: Record<string, unknown>;
  now?: () => number;
}

/** A JSON-lines logger; `write` defaults to stderr so stdout stays for command output. */
export const createLogger = (options: LoggerOptions = {}): Logger => {
  const min = LEVELS[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? Date.now;
  const base = options.base ?? {};
  const emit = (level: LogLevel, event: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] < min) return;
    const record = { ts: new Date(now()).toISOString(), level, event, ...redact(base), ...redact(fields) };
    write(`${JSON.stringify(record, (_k, v) => (v instanceof Error ? v.message : v))}\n`);
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } }),
  };
};

/** A logger that drops everything (library use, benchmarks). */
export const silentLogger: Logger = createLogger({ write: () => {} });
