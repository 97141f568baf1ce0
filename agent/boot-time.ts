import { readFileSync } from "node:fs";

/** Boot time in unix seconds, from the `btime` line of /proc/stat (or a file in that format). */
export const readBootTime = (procStat = "/proc/stat"): number => {
  const match = /^btime\s+(\d+)$/m.exec(readFileSync(procStat, "utf8"));
  if (!match) throw new Error(`${procStat} has no btime line`);
  return Number(match[1]);
};
