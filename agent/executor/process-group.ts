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

// A killed process dies when the kernel next schedules it: on a loaded machine, not at once. A
// process stuck in uninterruptible I/O (D state) may take longer still; this bounds the wait.
const KILL_SETTLE_MS = 2_000;

/** Poll until the group is gone or `ms` have passed; true when it is gone. */
const waitGone = async (pgid: number, ms: number): Promise<boolean> => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    if (!groupAlive(pgid)) return true;
  }
  return !groupAlive(pgid);
};

/**
 * SIGTERM the group, then SIGKILL whatever still runs after graceMs; resolves when it is over
 * (or KILL_SETTLE_MS after the SIGKILL, for a process the kernel cannot kill yet).
 */
export const terminateGroup = async (pgid: number, graceMs: number): Promise<void> => {
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, "SIGTERM");
  if (await waitGone(pgid, graceMs)) return;
  signalGroup(pgid, "SIGKILL");
  await waitGone(pgid, KILL_SETTLE_MS);
};
