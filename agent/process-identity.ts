import { readFileSync } from "node:fs";
import type { ProcessIdentity } from "./ledger.ts";

/** A process's start time (field 22 of /proc/PID/stat, ticks since boot); null when it is gone. */
export const processStartTime = (pid: number): string | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? null : (fields[19] ?? null);
  } catch {
    return null;
  }
};

/** This process, as recorded in the ledger's owner claim. */
export const selfIdentity = (): ProcessIdentity => ({ pid: process.pid, startTime: processStartTime(process.pid) ?? "unknown" });

/** Is that very process (not a later one with a reused pid) still running? */
export const isAlive = (owner: ProcessIdentity): boolean => processStartTime(owner.pid) === owner.startTime;
