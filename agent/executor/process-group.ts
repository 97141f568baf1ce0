// A step runs as its own process group (spawned detached), so one signal reaches everything it
// started, however deep, unless a process deliberately left the group (setsid).
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const POLL_MS = 25;

/**
 * Send a signal to a whole process group. ESRCH: the group is already gone. EPERM: what is
 * left runs as another user (a setuid program) and is beyond this agent's reach either way.
 */
export const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ESRCH" && code !== "EPERM") throw error;
  }
};

const inGroupAndRunning = (pid: string, pgid: number): boolean => {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false; // exited between readdir and read
  }
  // After the parenthesised command name: state, ppid, pgrp, ...
  const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return state !== "Z" && Number(pgrp) === pgid;
};

/**
 * Whether a process of the group still runs. Zombies count as gone: they run nothing, and
 * where PID 1 does not reap orphans (containers) they stay in the group indefinitely.
 */
export const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let pids: string[];
  try {
    pids = readdirSync("/proc");
  } catch {
    return true; // cannot tell without /proc: assume alive, so the SIGKILL still comes
  }
  return pids.some((pid) => /^\d+$/.test(pid) && inGroupAndRunning(pid, pgid));
};

/** SIGTERM the group, then SIGKILL whatever still runs after graceMs; resolves when it is over. */
export const terminateGroup = async (pgid: number, graceMs: number): Promise<void> => {
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    if (!groupAlive(pgid)) return;
  }
  signalGroup(pgid, "SIGKILL");
};
