// A seal worker thread (seal-pool.ts): receives the admin keys once, in memory, then batches of
// items; answers each batch with its envelopes (buffers transferred, not copied). Logs nothing.
import { parentPort } from "node:worker_threads";
import { sodiumReady } from "../shared/sodium.ts";
import type { AdminKeyPair } from "../shared/types.ts";
import { sealItems } from "./seal-batch.ts";
import type { SealItem, SealShared } from "./seal-batch.ts";

/** What the pool sends: the keys first, then jobs. */
export type SealWorkerRequest = { signers: AdminKeyPair[] } | { job: number; items: SealItem[]; shared: SealShared };

const port = parentPort!;
await sodiumReady();
let signers: AdminKeyPair[] = [];
port.on("message", (m: SealWorkerRequest) => {
  if ("signers" in m) {
    signers = m.signers;
    return;
  }
  const out = sealItems(m.items, m.shared, signers);
  // Transferred only when the view is its whole buffer (sealEnvelope's are): nothing else is detached.
  const own = (o: (typeof out)[number]): o is Uint8Array =>
    o instanceof Uint8Array && o.byteOffset === 0 && o.byteLength === o.buffer.byteLength;
  port.postMessage(
    { job: m.job, out },
    out.filter(own).map((o) => o.buffer as ArrayBuffer),
  );
});
port.postMessage({ ready: true });
