// Per-run log file: step output with a header and footer per step, size-capped. Env values and
// file content are never written here; what a step prints is the step's own business.
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

const RUN_LOG = /^run-\d+-(\d+)\.log$/;
const TRUNCATED = "[output truncated]";

export interface RunLog {
  /** Step output; beyond the cap it is dropped after a single truncation marker. */
  output(chunk: Uint8Array): void;
  /** A header/footer line, always written, on a line of its own. */
  line(text: string): void;
  close(): void;
}

/** The log file of one run under logDir. */
export const runLogPath = (logDir: string, id: number, runId: number): string => join(logDir, `run-${id}-${runId}.log`);

/** Create (or truncate) a run log, 0600, refusing to follow a symlink planted in the log dir. */
export const openRunLog = (path: string, logDir: string, maxOutputBytes: number): RunLog => {
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  fchmodSync(fd, 0o600);
  let outputBytes = 0;
  let truncated = false;
  let atLineStart = true;
  let broken = false;
  const write = (bytes: Uint8Array): void => {
    if (broken || bytes.length === 0) return;
    try {
      writeSync(fd, bytes);
      atLineStart = bytes[bytes.length - 1] === 0x0a;
    } catch {
      // A full or failing disk must not stop the drain of the step's output (the step would
      // block on a full pipe); the run's result still reaches the ledger.
      broken = true;
    }
  };
  const line = (text: string): void => write(Buffer.from(`${atLineStart ? "" : "\n"}${text}\n`));
  return {
    output: (chunk) => {
      if (truncated) return;
      const room = maxOutputBytes - outputBytes;
      write(chunk.length <= room ? chunk : chunk.subarray(0, room));
      outputBytes += Math.min(chunk.length, room);
      if (chunk.length > room) {
        truncated = true;
        line(TRUNCATED);
      }
    },
    line,
    close: () => closeSync(fd),
  };
};

const logAge = (dir: string, name: string): { name: string; mtimeMs: number; runId: number } | null => {
  try {
    return { name, mtimeMs: statSync(join(dir, name)).mtimeMs, runId: Number(RUN_LOG.exec(name)?.[1]) };
  } catch {
    return null;
  }
};

/** Keep only the newest `keep` run logs. Best effort: what cannot be removed now goes next run. */
export const rotateRunLogs = (logDir: string, keep: number): void => {
  let names: string[];
  try {
    names = readdirSync(logDir);
  } catch {
    return; // the log dir vanished or became unreadable: nothing to rotate
  }
  const logs = names
    .filter((name) => RUN_LOG.test(name))
    .map((name) => logAge(logDir, name))
    .filter((log) => log !== null)
    .sort((a, b) => b.mtimeMs - a.mtimeMs || b.runId - a.runId);
  for (const old of logs.slice(keep)) {
    try {
      unlinkSync(join(logDir, old.name));
    } catch {
      // already gone, or not ours to remove: retried after the next run
    }
  }
};

const STEP_HEADER = Buffer.from("\n==> [");

/**
 * The end of a run log from its last step header on (the failing step: header, output, footer),
 * at most `maxBytes`; the whole end when no step started (a file error). Empty when unreadable.
 */
export const readRunLogTail = (path: string, maxBytes: number): Uint8Array => {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return new Uint8Array();
  }
  try {
    const size = fstatSync(fd).size;
    const want = Math.min(size, maxBytes * 4);
    const buf = Buffer.alloc(want);
    const got = readSync(fd, buf, 0, want, size - want);
    const text = buf.subarray(0, got);
    const header = text.lastIndexOf(STEP_HEADER);
    const fromStep = header >= 0 ? text.subarray(header + 1) : text;
    return fromStep.subarray(Math.max(0, fromStep.length - maxBytes));
  } catch {
    return new Uint8Array();
  } finally {
    closeSync(fd);
  }
};
