import { FleetplanError } from "./errors.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse "90s", "10m", "24h", "7d", "250ms" (or a bare number of seconds) into ms. */
export const parseDuration = (text: string, option: string): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new FleetplanError("invalid_argument", `${option}: ${JSON.stringify(text)} is not a duration (e.g. 90s, 10m, 24h)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? "s"]!);
};
