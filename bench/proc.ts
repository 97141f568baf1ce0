// What Linux says of a process (/proc): its memory and the CPU time it used, for the benches' figures.
import { readFileSync } from "node:fs";

const TICKS_PER_S = 100; // USER_HZ on Linux

/** /proc/PID/status memory fields in MB. */
export const memoryOf = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const mb = (field: string) => Math.round(Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) / 102.4) / 10;
  return { rss_mb: mb("VmRSS"), hwm_mb: mb("VmHWM"), rss_anon_mb: mb("RssAnon"), rss_file_mb: mb("RssFile") };
};

/**
 * User + system CPU seconds a process (all its threads) used so far; with `children`, also those of its children that
 * ended and were waited for (an agent's plan steps, a bench's finished CLI runs).
 */
export const cpuOf = (pid: number | "self", opts: { children?: boolean } = {}): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
    .replace(/^.*\) /, "")
    .split(" ")
    .map(Number);
  // utime, stime, cutime, cstime: fields 14 to 17 of stat
  return (fields[11]! + fields[12]! + (opts.children ? fields[13]! + fields[14]! : 0)) / TICKS_PER_S;
};
