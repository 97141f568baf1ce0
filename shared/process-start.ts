import { readFileSync } from "node:fs";

/**
 * A process's start time (field 22 of /proc/PID/stat, ticks since boot); null when it is gone or a zombie.
 * Without /proc (not Linux) only liveness can be told: "unknown" for a live pid.
 */
export const processStartTime = (pid: number): string | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? null : (fields[19] ?? null);
  } catch {
    if (process.platform === "linux") return null;
    try {
      process.kill(pid, 0);
      return "unknown";
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "EPERM" ? "unknown" : null;
    }
  }
};
