import { FleetplanError } from "../../shared/errors.ts";

// Waves of a rollout, pure: which targets go first (canaries, then a stable natural order) and
// how many targets have been pushed by the end of each wave (cumulative counts).

/** One `--waves` / `--batch` entry: an absolute count or a percentage of the targets. */
export type Amount = { count: number } | { percent: number };

const AMOUNT = /^(\d+(?:\.\d+)?)(%?)$/;

/** Parse `N` or `P%` (0 < P ≤ 100, N ≥ `min`); the error names the flag, the text and the fix. */
export const parseAmount = (flag: string, text: string, min = 1): Amount => {
  const match = AMOUNT.exec(text.trim());
  const value = match ? Number(match[1]) : NaN;
  if (match?.[2] === "%" && value > 0 && value <= 100) return { percent: value };
  if (match !== null && match[2] === "" && Number.isSafeInteger(value) && value >= min) return { count: value };
  throw new FleetplanError(
    "invalid_argument",
    `${flag}: ${JSON.stringify(text)} must be a whole number${min > 0 ? " ≥ 1" : ""} or a percentage like 10%`,
  );
};

/** How many of `total` targets an amount is: a percentage rounds up (10% of 5 is 1, never 0), a count is capped at total. */
export const resolveAmount = (amount: Amount, total: number): number =>
  "count" in amount ? Math.min(amount.count, total) : Math.min(total, Math.max(1, Math.ceil((amount.percent * total) / 100 - 1e-9)));

/** Parse `--waves 1,10%,50%,100%` into its entries (cumulative: how many targets are pushed by the end of each wave). */
export const parseWaves = (text: string): Amount[] => {
  const entries = text.split(",").map((e) => e.trim());
  if (entries.some((e) => e === "")) {
    throw new FleetplanError("invalid_argument", `--waves: ${JSON.stringify(text)} has an empty entry; write e.g. 1,10%,50%,100%`);
  }
  return entries.map((e) => parseAmount("--waves", e));
};

/**
 * Cumulative wave ends for `total` targets: strictly increasing, the last one `total`. Entries
 * that add no target (10% of 5 after 1) are dropped; an entry below the one before it, or waves
 * that never reach every target, are refused (a rollout must not silently leave hosts out).
 */
export const waveEnds = (waves: Amount[], total: number): number[] => {
  const ends: number[] = [];
  for (const amount of waves) {
    const end = resolveAmount(amount, total);
    const last = ends.at(-1) ?? 0;
    if (end < last) {
      throw new FleetplanError(
        "invalid_argument",
        `--waves: entries are cumulative and must not go down (${end} targets after ${last}); e.g. 1,10%,50%,100%`,
      );
    }
    if (end > last) ends.push(end);
  }
  if (total > 0 && ends.at(-1) !== total) {
    throw new FleetplanError(
      "invalid_argument",
      `--waves: the last wave reaches ${ends.at(-1) ?? 0} of ${total} targets; end the list with 100%`,
    );
  }
  return ends;
};

/** `--batch N|P%`: equal waves of that size, the last one possibly smaller. */
export const batchEnds = (batch: Amount, total: number): number[] => {
  const size = resolveAmount(batch, total);
  return Array.from({ length: size === 0 ? 0 : Math.ceil(total / size) }, (_, i) => Math.min(total, (i + 1) * size));
};

const CHUNK = /(\d+)|(\D+)/g;

/** Natural order of host names (web-2 before web-10), ties broken by plain code point order: the same on every machine. */
export const naturalCompare = (a: string, b: string): number => {
  const pa = a.match(CHUNK) ?? [];
  const pb = b.match(CHUNK) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const [x, y] = [pa[i]!, pb[i]!];
    const numeric = /^\d/.test(x) && /^\d/.test(y);
    const diff = numeric ? Number(x) - Number(y) || x.length - y.length : x < y ? -1 : x > y ? 1 : 0;
    if (diff !== 0) return diff;
  }
  return pa.length - pb.length || (a < b ? -1 : a > b ? 1 : 0);
};

/** Rollout order: `canaries` first as given (each must be a target), then the rest in natural order. */
export const orderTargets = (hosts: readonly string[], canaries: readonly string[] = []): string[] => {
  const known = new Set(hosts);
  const missing = canaries.filter((c) => !known.has(c));
  if (missing.length > 0) {
    throw new FleetplanError(
      "invalid_argument",
      `--canary: ${missing.join(", ")} not among the selected targets; canaries must be targets of this push`,
    );
  }
  const first = [...new Set(canaries)];
  const rest = hosts.filter((h) => !first.includes(h)).sort(naturalCompare);
  return [...first, ...rest];
};

/** The 0-based wave a target at `position` belongs to. */
export const waveOf = (position: number, ends: readonly number[]): number => ends.findIndex((end) => position < end);

/**
 * What wave `wave` pushes: its own targets not yet done and, when `retry` (the first wave of a
 * resume), every earlier one whose latest outcome is not a success: the operator fixed them.
 */
export const hostsToPush = (
  targets: readonly { host: string; position: number; outcome: string }[],
  ends: readonly number[],
  wave: number,
  done: ReadonlySet<string>,
  retry: boolean,
): string[] =>
  targets
    .filter((t) => t.position < ends[wave]! && (retry || waveOf(t.position, ends) === wave) && !done.has(t.outcome))
    .map((t) => t.host);
