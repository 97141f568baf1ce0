// Sealing on every core: a pool of worker threads (seal-worker.ts), each with its own libsodium
// and zstd. The admin private keys reach the workers by postMessage, in memory only, and are
// never logged. Below `minItems` envelopes the pool is not worth its start-up (~0.3-0.7 s per
// worker here, tsx included): sealing stays on the main thread.
import { availableParallelism } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { setImmediate } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import type { AdminKeyPair } from "../shared/types.ts";
import { sealItems } from "./seal-batch.ts";
import type { SealItem, SealOutcome, SealShared } from "./seal-batch.ts";
import type { SealWorkerRequest } from "./seal-worker.ts";

/** Seals batches; `close` ends its workers (if any). */
export interface Sealer {
  readonly workers: number;
  /** Resolves once every worker can seal (at once for the inline sealer); rejects if one fails first. */
  readonly started: Promise<void>;
  seal(items: SealItem[], shared: SealShared): Promise<SealOutcome[]>;
  close(): Promise<void>;
}

/** Items per message to a worker: large enough to amortise the message, small enough to balance the load. */
const CHUNK = 64;

/** On the main thread, for small pushes (and when workers are not wanted). */
export const inlineSealer = (signers: AdminKeyPair[]): Sealer => ({
  workers: 0,
  started: Promise.resolve(),
  seal: async (items, shared) => sealItems(items, shared, signers),
  close: async () => {},
});

// The worker module has this module's extension: .ts under tsx (tests), .js once built (the bins, bench/push.ts).
const EXT = extname(fileURLToPath(import.meta.url));
const WORKER_URL = new URL(`./seal-worker${EXT}`, import.meta.url);

/**
 * A worker running seal-worker. Node 20 does not pass tsx's loader hooks to a worker when they were registered
 * in code (coordinator/bin.mjs), so under TypeScript a one-line bootstrap registers tsx in the worker first.
 */
const startWorker = (): Worker => {
  if (EXT !== ".ts") return new Worker(WORKER_URL);
  const api = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  return new Worker(`import(${api}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`, { eval: true });
};

interface Pending {
  resolve: (out: SealOutcome[]) => void;
  reject: (error: Error) => void;
  items: number;
}

/** Start `size` seal workers (default: one per core); jobs go to the worker with the fewest items queued. */
export const createSealPool = (signers: AdminKeyPair[], size = availableParallelism()): Sealer => {
  const workers = Array.from({ length: size }, startWorker);
  const queued = workers.map(() => 0);
  const ready = workers.map(() => false);
  const pending = new Map<number, Pending>();
  let nextJob = 0;
  let allReady = () => {};
  let notReady = (_: Error) => {};
  const started = new Promise<void>((resolve, reject) => ([allReady, notReady] = [resolve, reject]));
  started.catch(() => {}); // seen by whoever awaits it; a pool nobody awaits must not crash the process
  let failure: Error | null = null;
  const fail = (error: Error) => {
    failure ??= error;
    notReady(failure);
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  };

  workers.forEach((w, i) => {
    w.postMessage({ signers } satisfies SealWorkerRequest);
    w.on("message", (m: { ready?: true; job?: number; out?: SealOutcome[] }) => {
      if (m.ready) ready[i] = true;
      if (m.ready && !ready.includes(false)) allReady();
      const p = m.job === undefined ? undefined : pending.get(m.job);
      if (!p) return;
      pending.delete(m.job!);
      queued[i]! -= p.items;
      p.resolve(m.out!);
    });
    w.on("error", (error) => fail(new Error(`seal worker failed: ${error.message}`, { cause: error })));
    w.on("exit", (code) => fail(new Error(`seal worker exited with code ${code}`)));
  });

  const sealChunk = (items: SealItem[], shared: SealShared): Promise<SealOutcome[]> =>
    new Promise((resolve, reject) => {
      const worker = queued.reduce((best, n, i) => (ready[i] && (!ready[best] || n < queued[best]!) ? i : best), 0);
      const job = nextJob++;
      pending.set(job, { resolve, reject, items: items.length });
      queued[worker]! += items.length;
      workers[worker]!.postMessage({ job, items, shared } satisfies SealWorkerRequest);
    });

  return {
    workers: size,
    started,
    // Until a worker is ready (or once one failed), chunks are sealed here, yielding between them so messages get
    // through. A chunk lost with a failed worker is sealed here again: its ids are reserved, nothing was put yet.
    seal: async (items, shared) => {
      const chunks: Promise<SealOutcome[]>[] = [];
      for (let at = 0; at < items.length; at += CHUNK) {
        const part = items.slice(at, at + CHUNK);
        const inline = () => sealItems(part, shared, signers);
        if (failure === null && ready.includes(true)) chunks.push(sealChunk(part, shared).catch(inline));
        else {
          chunks.push(Promise.resolve(inline()));
          await setImmediate();
        }
      }
      return (await Promise.all(chunks)).flat();
    },
    close: async () => {
      failure ??= new Error("seal pool closed");
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
};
