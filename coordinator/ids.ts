// Provisioning ids (docs/protocol.md): the UTC timestamp YYYYMMDDHHMMSS as an integer, or last+1
// when that is not above the last id issued for the target, so ids never repeat or go down
// even when pushes come faster than one a second or the clock is set back.

import { timestampId } from "../shared/ids.ts";

/** Largest id that stays exact as a JavaScript number and as a Prometheus float64 sample. */
export const MAX_PROVISIONING_ID = Number.MAX_SAFE_INTEGER;

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
