import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { FleetplanError, RejectReason } from "./errors.ts";

/** Exit codes shared by both CLIs (documented in the README). */
export const ExitCode = {
  Ok: 0,
  /** A run failed, or servers are not converged. */
  Failed: 1,
  /** Bad usage, bad config or bad input: nothing was done. */
  Usage: 2,
  /** An envelope was rejected by verification. */
  Rejected: 3,
  /** The store, an agent or a host could not be reached. */
  Unavailable: 4,
} as const;

const REJECTS = new Set<string>(Object.values(RejectReason));
const UNAVAILABLE = new Set(["store_unavailable", "store_timeout", "store_rejected", "ssh_failed", "agent_missing", "metrics_unavailable"]);

/** Exit code for a reason code. */
export const exitCodeFor = (reason: string): number =>
  REJECTS.has(reason) ? ExitCode.Rejected : UNAVAILABLE.has(reason) ? ExitCode.Unavailable : reason === "internal" || reason === "ledger_error" ? ExitCode.Failed : ExitCode.Usage;

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with a FleetplanError (naming the bad flag) instead of a TypeError. */
export const parseFlags = <O extends Options>(args: string[], options: O, allowPositionals = true) => {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new FleetplanError("invalid_argument", (error as Error).message.replace(/\. To specify.*$/s, ""));
  }
};

/** A whole number from 1 to `max` given as flag text; the error names the flag and the text (never NaN). */
export const parseCountFlag = (flag: string, text: string, max = Number.MAX_SAFE_INTEGER): number => {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isSafeInteger(value) && value >= 1 && value <= max) return value;
  throw new FleetplanError("invalid_argument", `${flag}: ${text} must be ${max === Number.MAX_SAFE_INTEGER ? "a positive integer" : `an integer from 1 to ${max}`}`);
};

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** Report an error once, machine-readably under --json, and return the exit code. */
export const reportError = (error: unknown, json: boolean, io: CliIo = processIo): number => {
  const reason = error instanceof FleetplanError ? error.reason : "internal";
  const message = error instanceof Error ? error.message : String(error);
  if (json) io.stdout(`${JSON.stringify({ ok: false, reason, message })}\n`);
  else io.stderr(`error: ${message} (${reason})\n`);
  return exitCodeFor(reason);
};

/** Render rows as an aligned table (TTY) — callers print JSON instead under --json. */
export const formatTable = (headers: string[], rows: (string | number | null)[][]): string => {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null ? "-" : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
};
