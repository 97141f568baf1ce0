// Provisioning ids (PROTOCOL.md): the UTC timestamp YYYYMMDDHHMMSS as an integer, or last+1
// when that is not above the last id issued for the target, so ids never repeat or go down
// even when pushes come faster than one a second or the clock is set back.

/** Largest id that stays exact as a JavaScript number and as a Prometheus float64 sample. */
export const MAX_PROVISIONING_ID = Number.MAX_SAFE_INTEGER;

/** The UTC wall-clock time `now` as the integer YYYYMMDDHHMMSS. */
export const timestampId = (now: Date): number => {
  const year = now.getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) throw new RangeError(`provisioning id: the clock gave an unusable date (${String(now)})`);
  // toISOString is YYYY-MM-DDTHH:MM:SS.sssZ for these years; keep only the digits we need.
  return Number(now.toISOString().slice(0, 19).replace(/[-T:]/g, ""));
};

/** The next id for a target whose last issued id is `lastIssued` (null: never issued). */
export const nextProvisioningId = (now: Date, lastIssued: number | null): number => {
  if (lastIssued !== null && !(Number.isSafeInteger(lastIssued) && lastIssued >= 0)) {
    throw new RangeError(`provisioning id: last issued id ${lastIssued} is not a non-negative safe integer`);
  }
  const fromClock = timestampId(now);
  const next = lastIssued === null || fromClock > lastIssued ? fromClock : lastIssued + 1;
  if (next > MAX_PROVISIONING_ID) {
    throw new RangeError(`provisioning id: ${lastIssued} + 1 would exceed 2^53-1; ids must stay exact`);
  }
  return next;
};
