import { processStartTime } from "../shared/process-start.ts";
import type { ProcessIdentity } from "./ledger.ts";

/** This process, as recorded in the ledger's owner claim. */
export const selfIdentity = (): ProcessIdentity => ({ pid: process.pid, startTime: processStartTime(process.pid) ?? "unknown" });

/** Is that very process (not a later one with a reused pid) still running? */
export const isAlive = (owner: ProcessIdentity): boolean => processStartTime(owner.pid) === owner.startTime;
