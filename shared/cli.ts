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
  REJECTS.has(reason)
    ? ExitCode.Rejected
    : UNAVAILABLE.has(reason)
      ? ExitCode.Unavailable
      : reason === "internal" || reason === "ledger_error"
        ? ExitCode.Failed
        : ExitCode.Usage;

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Levenshtein distance, for did-you-mean on a mistyped command or flag. */
const editDistance = (a: string, b: string): number => {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
};

/** The closest candidate within a third of the word's length (at least 2 edits), else null: a typo, not a new word. */
export const nearest = (word: string, candidates: Iterable<string>): string | null => {
  let best: { name: string; d: number } | null = null;
  for (const name of candidates) {
    const d = editDistance(word, name);
    if (d <= Math.max(2, Math.floor(word.length / 3)) && (best === null || d < best.d)) best = { name, d };
  }
  return best?.name ?? null;
};

/** ` (did you mean --group?)`, or nothing when no candidate is close. */
export const didYouMean = (word: string, candidates: Iterable<string>, prefix = ""): string => {
  const match = nearest(word, candidates);
  return match === null ? "" : ` (did you mean ${prefix}${match}?)`;
};

/** parseArgs with a FleetplanError (naming the bad flag, and the nearest known one) instead of a TypeError. */
export const parseFlags = <O extends Options>(args: string[], options: O, allowPositionals = true) => {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify.*$/s, "");
    const unknown = /^Unknown option '--([^'=]+)'/.exec(message)?.[1];
    const hint = unknown === undefined ? "" : didYouMean(unknown, Object.keys(options), "--");
    throw new FleetplanError("invalid_argument", message + hint);
  }
};

const NATURAL = new Intl.Collator("en", { numeric: true, sensitivity: "variant" });
/** Host names in natural order (batch-2 before batch-10), for every listing of hosts. */
export const compareHosts = (a: string, b: string): number => NATURAL.compare(a, b);

/** JSON.parse's message with the line and column of its position (editors go by those, not by offsets). */
export const jsonErrorAt = (text: string, message: string): string => {
  const bare = message.replace(/ \(line \d+ column \d+\)$/, "");
  const match = / at position (\d+)$/.exec(bare);
  const at = match ? Number(match[1]) : /end of JSON input/.test(bare) ? text.length : null;
  if (at === null) return bare;
  const before = text.slice(0, at).split("\n");
  return `${match ? bare.slice(0, match.index) : bare} at line ${before.length} column ${before.at(-1)!.length + 1}`;
};

/** A whole number from 1 to `max` given as flag text; the error names the flag and the text (never NaN). */
export const parseCountFlag = (flag: string, text: string, max = Number.MAX_SAFE_INTEGER): number => {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isSafeInteger(value) && value >= 1 && value <= max) return value;
  throw new FleetplanError(
    "invalid_argument",
    `${flag}: ${text} must be ${max === Number.MAX_SAFE_INTEGER ? "a positive integer" : `an integer from 1 to ${max}`}`,
  );
};

/** One command's help page: `fleetplan CMD --help` and `fleetplan help CMD` print it (both CLIs). */
export interface CommandHelp {
  /** The usage line, without the program name. */
  usage: string;
  /** What the command does, in a sentence or two. */
  does: string;
  /** [flag, what it does] pairs; the global flags are on the program's --help page. */
  flags: readonly (readonly [string, string])[];
  /** One example command line. */
  example: string;
}

/** The help page of one command, flags aligned, ending with a pointer to the global page. */
export const formatCommandHelp = (help: CommandHelp, bin = "fleetplan"): string => {
  const width = Math.max(0, ...help.flags.map(([f]) => f.length));
  const flags = help.flags.length === 0 ? "" : `\nFlags:\n${help.flags.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`).join("\n")}\n`;
  return (
    `Usage: ${bin} ${help.usage}\n\n${help.does}\n${flags}\nExample:\n  ${help.example}\n\n` +
    `Every command and the global flags: ${bin} --help\n`
  );
};

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** ANSI styling and redrawn lines only on a terminal, and not under NO_COLOR or TERM=dumb: never escape codes in a file. */
export const ansiOn = (stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean =>
  stream.isTTY === true && env.NO_COLOR === undefined && env.TERM !== "dumb";

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
  return `${cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`;
};
