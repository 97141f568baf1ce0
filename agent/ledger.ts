// The agent's durable memory (docs/protocol.md step 8): every envelope seen, the high-water mark,
// runs and their steps, in SQLite. better-sqlite3 is synchronous: a write waiting on another
// process's lock blocks the event loop for up to busyTimeoutMs, which is the price of keeping
// accept-before-execute a single, simple transaction.
import { closeSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { EnvelopeError, FleetplanError } from "../shared/errors.ts";
import { migrateLedger, prepareStatements, toEnvelope, toRun, toStep } from "./ledger-schema.ts";
import type { Row } from "./ledger-schema.ts";
import type { FileRecord } from "./drift.ts";

export interface SeenEnvelope {
  id: number | null;
  planHash: string | null;
  signerIds: string[];
  target: string | null;
  issued: number | null;
  expires: number | null;
  /** Store revision (NATS sequence, Consul ModifyIndex), null for `apply`. */
  revision: number | null;
  /** Where it came from: `nats`, `consul`, `apply`, ... */
  source: string;
  /** unix ms */
  at: number;
  /** unix s */
  bootTime: number;
}

/** One step's end, as the executor reports it. */
export interface StepRecord {
  index: number;
  name: string;
  /** null when the step was killed by a signal or could not start. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** unix ms */
  startedAt: number;
}

export type RunState = "pending" | "running" | "succeeded" | "failed" | "interrupted" | "superseded";

export interface RunRow {
  runId: number;
  envelopeSeq: number | null;
  id: number;
  planHash: string;
  state: RunState;
  queuedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  /** Boot time (unix s) when the run finished. */
  bootTime: number | null;
  failedStep: string | null;
  error: string | null;
  steps: StepRecord[];
}

/** An envelopes row: what was seen, plus its sequence number and result. */
export interface EnvelopeRow extends Omit<SeenEnvelope, "at"> {
  seq: number;
  /** `accepted` or the reject reason. */
  result: string;
  seenAt: number;
}

export interface RunFinish {
  state: "succeeded" | "failed" | "interrupted";
  at: number;
  durationMs: number;
  bootTime: number;
  failedStep?: string | null;
  /** A short reason, never plan content. */
  error?: string | null;
}

/** A process, named so that a reused pid is not mistaken for it. */
export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

export interface Ledger {
  /**
   * Become the one process that accepts and runs envelopes with this ledger. Another live
   * owner (the daemon while `apply` runs, or the reverse) is a `conflict`; a dead one's claim
   * is taken over. `isAlive` decides, so a crashed owner never blocks for good.
   */
  claim(self: ProcessIdentity, at: number, isAlive: (owner: ProcessIdentity) => boolean): void;
  /** Give the claim up (only if it is ours). */
  release(self: ProcessIdentity): void;
  highWaterMark(): { id: number; planHash: string | null };
  /** Record a rejected/ignored envelope (audit only; never touches the high-water mark). */
  recordSeen(e: SeenEnvelope & { reason: string }): void;
  /** Count a rejection without a row: for unsigned garbage, which anyone with store access can send in bulk. */
  countRejected(reason: string): void;
  /** PROTOCOL step 8, in one transaction: re-check id > hwm (else `stale`, or `duplicate` for the same id and hash), record the envelope, raise the hwm, queue a `pending` run. Returns the run id. */
  accept(e: SeenEnvelope): number;
  /** Mark the run running; every other pending run becomes `superseded` (newest wins). Returns their ids. */
  startRun(runId: number, at: number): number[];
  recordStep(runId: number, step: StepRecord): void;
  finishRun(runId: number, fin: RunFinish): void;
  /** At startup: every run still pending/running (cut short by a crash or restart) becomes `interrupted`. */
  recoverInterrupted(at: number): RunRow[];
  /** Oldest first. */
  pendingRuns(): RunRow[];
  /** Newest succeeded run. */
  lastSuccess(): RunRow | null;
  /** Newest run that ran to an end: succeeded, failed or interrupted (superseded runs never ran). */
  lastFinished(): RunRow | null;
  /** Newest first, with steps. */
  runs(limit: number): RunRow[];
  /** Newest first. */
  envelopes(limit: number): EnvelopeRow[];
  /** Envelopes ever seen by result; kept apart from the rows so pruning does not lower them. */
  counts(): Record<string, number>;
  /** Delete envelope/run/step rows beyond age or count; never the high-water mark, the newest success, or a pending/running run (nor the envelopes they point to). Returns rows deleted. */
  prune(opts: { maxAgeMs: number; maxRows: number; now: number }): number;
  /** Replace the files recorded for drift checks with those of this successful run (one transaction). */
  recordFiles(runId: number, files: readonly FileRecord[]): void;
  /** The files the newest successful run wrote, by path (empty before the first, or before this ledger kept them). */
  appliedFiles(): FileRecord[];
  close(): void;
}

export interface LedgerOptions {
  /** How long a write waits for another connection's lock, default 10 s. */
  busyTimeoutMs?: number;
}

/** Rethrow SQLite failures as `ledger_error` naming the file and the SQLite code: callers refuse to execute on it. */
const wrapError = (path: string, error: unknown): Error => {
  if (error instanceof FleetplanError) return error;
  const code = (error as { code?: unknown }).code;
  const detail = typeof code === "string" ? `${code}: ${(error as Error).message}` : String((error as Error)?.message ?? error);
  return new FleetplanError("ledger_error", `ledger ${path}: ${detail}`, { cause: error });
};

const guarded = <T extends object>(path: string, target: T): T => {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(target)) {
    wrapped[name] = (...args: unknown[]) => {
      try {
        return (fn as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        throw wrapError(path, error);
      }
    };
  }
  return wrapped as T;
};

// The file is created 0600 before SQLite sees it (SQLite gives -wal/-shm the same mode), and
// only in a directory that already exists: a missing state dir is a configuration problem.
const createPrivateFile = (path: string): void => {
  if (!statSync(dirname(path)).isDirectory()) throw new Error(`${dirname(path)} is not a directory`);
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
};

const openDatabase = (path: string, busyTimeoutMs: number): Database.Database => {
  createPrivateFile(path);
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    if (db.pragma("journal_mode = WAL", { simple: true }) !== "wal" || db.readonly) {
      throw new FleetplanError("ledger_error", `ledger ${path}: SQLITE_READONLY: cannot open the ledger for writing`);
    }
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    migrateLedger(db, path);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
};

/** Open (creating and migrating as needed) the ledger at `path`. */
export const openLedger = (path: string, options: LedgerOptions = {}): Ledger => {
  let db: Database.Database;
  try {
    db = openDatabase(path, options.busyTimeoutMs ?? 10_000);
  } catch (error) {
    throw wrapError(path, error);
  }
  const q = prepareStatements(db);
  const withSteps = (r: Row): RunRow => toRun(r, (q.steps.all(r.run_id) as Row[]).map(toStep));
  const one = (r: unknown): RunRow | null => (r ? withSteps(r as Row) : null);
  const highWaterMark = () => {
    const r = q.hwm.get() as Row | undefined;
    return r ? { id: r.id as number, planHash: r.plan_hash as string | null } : { id: 0, planHash: null };
  };
  const insertSeen = (e: SeenEnvelope, result: string): number => {
    q.countEnvelope.run(result);
    const { signerIds, ...rest } = e;
    return Number(q.insertEnvelope.run({ ...rest, signerIds: JSON.stringify(signerIds), result }).lastInsertRowid);
  };

  const acceptTx = db.transaction((e: SeenEnvelope & { id: number; planHash: string }): number => {
    const hwm = highWaterMark();
    if (e.id <= hwm.id) {
      const same = e.id === hwm.id && e.planHash === hwm.planHash;
      throw new EnvelopeError(
        same ? "duplicate" : "stale",
        same ? `envelope ${e.id} is already accepted` : `envelope id ${e.id} is not above the highest accepted id ${hwm.id}`,
        e.id,
      );
    }
    const seq = insertSeen(e, "accepted");
    q.setHwm.run({ id: e.id, planHash: e.planHash, at: e.at });
    return Number(q.insertRun.run(seq, e.id, e.planHash, e.at).lastInsertRowid);
  });
  const startTx = db.transaction((runId: number, at: number): number[] => {
    if (q.startRun.run(at, runId).changes !== 1) throw new FleetplanError("conflict", `run ${runId} is not pending`);
    const others = (q.otherPending.all(runId) as Row[]).map((r) => r.run_id as number);
    for (const other of others) q.supersede.run(at, other);
    return others;
  });
  // Writes that a power cut may lose without changing what a restart decides (a run left `pending` or `running`
  // is `interrupted` either way, a superseded one too; a step row is detail): committed without their own fsync,
  // which the next synchronous commit (accept, finishRun) takes to disk with them. One fsync less between accept and spawn.
  const withoutFsync = <T>(write: () => T): T => {
    db.pragma("synchronous = NORMAL");
    try {
      return write();
    } finally {
      db.pragma("synchronous = FULL");
    }
  };
  const recoverTx = db.transaction((at: number): RunRow[] => {
    const cut = q.unfinished.all() as Row[];
    for (const r of cut) q.interrupt.run(at, r.run_id);
    return cut.map((r) => withSteps({ ...r, state: "interrupted", finished_at: at, error: "cut short by a restart" }));
  });
  const seenTx = db.transaction((e: SeenEnvelope, reason: string) => void insertSeen(e, reason));
  const claimTx = db.transaction((self: ProcessIdentity, at: number, isAlive: (o: ProcessIdentity) => boolean) => {
    const r = q.owner.get() as Row | undefined;
    const owner = r ? { pid: r.pid as number, startTime: r.start_time as string } : null;
    if (owner && (owner.pid !== self.pid || owner.startTime !== self.startTime) && isAlive(owner)) {
      throw new FleetplanError("conflict", `ledger ${path} is in use by another fleetplan-agent (pid ${owner.pid}); stop it first`);
    }
    q.setOwner.run({ ...self, at });
  });
  const filesTx = db.transaction((runId: number, files: readonly FileRecord[]) => {
    q.clearFiles.run();
    for (const f of files) q.insertFile.run({ ...f, runId });
  });
  const pruneTx = db.transaction(
    (p: { cutoff: number; maxRows: number }): number =>
      q.pruneSteps.run(p).changes + q.pruneRuns.run(p).changes + q.pruneEnvelopes.run(p).changes,
  );

  // Rejections sent in bulk (garbage, replays) are counted in memory and written once a second
  // in one transaction: a flood must not cost a synchronous disk flush per copy.
  const pendingCounts = new Map<string, number>();
  let countTimer: NodeJS.Timeout | null = null;
  const addCountsTx = db.transaction((entries: [string, number][]) => {
    for (const [reason, n] of entries) q.addCounts.run(reason, n);
  });
  const flushCounts = (): void => {
    if (countTimer) clearTimeout(countTimer);
    countTimer = null;
    if (pendingCounts.size === 0 || !db.open) return;
    const entries = [...pendingCounts];
    pendingCounts.clear();
    addCountsTx.immediate(entries);
  };

  return guarded(path, {
    claim: (self: ProcessIdentity, at: number, isAlive: (o: ProcessIdentity) => boolean) => claimTx.immediate(self, at, isAlive),
    release: (self: ProcessIdentity) => {
      q.releaseOwner.run(self);
    },
    countRejected: (reason: string) => {
      pendingCounts.set(reason, (pendingCounts.get(reason) ?? 0) + 1);
      countTimer ??= setTimeout(() => {
        try {
          flushCounts();
        } catch {
          // counts only: the next flush (or close) writes them
        }
      }, 1_000).unref();
    },
    highWaterMark,
    recordSeen: (e: SeenEnvelope & { reason: string }) => {
      const { reason, ...seen } = e;
      seenTx.immediate(seen, reason);
    },
    accept: (e: SeenEnvelope) => {
      if (e.id === null || e.planHash === null)
        throw new FleetplanError("invalid_argument", "an accepted envelope needs an id and a plan hash");
      return acceptTx.immediate({ ...e, id: e.id, planHash: e.planHash });
    },
    startRun: (runId: number, at: number) => withoutFsync(() => startTx.immediate(runId, at)),
    recordStep: (runId: number, s: StepRecord) => {
      withoutFsync(() => q.recordStep.run({ ...s, runId, timedOut: s.timedOut ? 1 : 0 }));
    },
    finishRun: (runId: number, fin: RunFinish) => {
      const row = { ...fin, failedStep: fin.failedStep ?? null, error: fin.error ?? null, runId };
      if (q.finishRun.run(row).changes !== 1) throw new FleetplanError("conflict", `run ${runId} is not running`);
    },
    recoverInterrupted: (at: number) => recoverTx.immediate(at),
    pendingRuns: () => (q.pending.all() as Row[]).map(withSteps),
    lastSuccess: () => one(q.lastSuccess.get()),
    lastFinished: () => one(q.lastFinished.get()),
    runs: (limit: number) => (q.runs.all(limit) as Row[]).map(withSteps),
    envelopes: (limit: number) => (q.envelopes.all(limit) as Row[]).map(toEnvelope),
    counts: () => {
      flushCounts();
      return Object.fromEntries((q.counts.all() as Row[]).map((r) => [r.result as string, r.count as number]));
    },
    prune: (o: { maxAgeMs: number; maxRows: number; now: number }) =>
      pruneTx.immediate({ cutoff: o.now - o.maxAgeMs, maxRows: Math.max(0, Math.floor(o.maxRows)) }),
    recordFiles: (runId: number, files: readonly FileRecord[]) => filesTx.immediate(runId, files),
    appliedFiles: () => q.files.all() as FileRecord[],
    close: () => {
      flushCounts();
      if (db.open) db.close();
    },
  });
};
