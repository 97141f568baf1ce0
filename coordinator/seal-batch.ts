// Sealing of a batch of envelopes, the same code on the main thread and in seal workers
// (seal-worker.ts): a failure of one item (a bad node key) fails that item, not the batch.
import { sealEnvelope } from "../shared/envelope.ts";
import { reasonOf } from "../shared/errors.ts";
import { loadNodePublicKey } from "../shared/key-files.ts";
import type { AdminKeyPair } from "../shared/types.ts";

/** One envelope to seal: the host's bound plan bytes (plan-binder.ts), its reserved id and its node key line. */
export interface SealItem {
  bytes: Uint8Array;
  id: number;
  target: string;
  nodeKey: string;
}

/** Header fields every envelope of a push shares. */
export interface SealShared {
  expires: number;
  issued: number;
}

/** A sealed envelope, or why this one could not be sealed. */
export type SealOutcome = Uint8Array | { reason: string; message: string };

/** Seal every item with `signers`; never throws. */
export const sealItems = (items: readonly SealItem[], shared: SealShared, signers: AdminKeyPair[]): SealOutcome[] =>
  items.map((item) => {
    try {
      const nodePublicKey = loadNodePublicKey(item.nodeKey).publicKey;
      return sealEnvelope(item.bytes, { id: item.id, target: item.target, nodePublicKey, signers, ...shared });
    } catch (error) {
      return { reason: reasonOf(error), message: (error as Error).message };
    }
  });
