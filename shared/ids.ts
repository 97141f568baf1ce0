// The time encoding of provisioning ids (docs/protocol.md): the UTC timestamp YYYYMMDDHHMMSS as
// an integer. The coordinator issues ids from it; agents use it to refuse an id that runs
// ahead of its own issue time, so one envelope with a huge id cannot freeze a host.

/** The UTC wall-clock time `now` as the integer YYYYMMDDHHMMSS. */
export const timestampId = (now: Date): number => {
  const year = now.getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) throw new RangeError(`provisioning id: the clock gave an unusable date (${String(now)})`);
  // toISOString is YYYY-MM-DDTHH:MM:SS.sssZ for these years; keep only the digits we need.
  return Number(now.toISOString().slice(0, 19).replace(/[-T:]/g, ""));
};

/** The highest id an envelope issued at `issuedMs` may carry: its issue time plus the allowed skew, encoded. */
export const maxIdAt = (issuedMs: number, skewMs: number): number => {
  const at = new Date(issuedMs + skewMs);
  return at.getUTCFullYear() > 9999 ? Number.MAX_SAFE_INTEGER : timestampId(at);
};
