// The agent's trust, as a chain: the trust file (version 1, the root it was installed with), then
// every rotation it accepted, persisted atomically in the state dir and re-verified at each start.
// Fetched from the store at start, on notice, after a reconnect and on a timer, from its own version on.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnvelope } from "../shared/envelope.ts";
import { reasonOf } from "../shared/errors.ts";
import { writeFileAtomic } from "../shared/files.ts";
import type { Logger } from "../shared/log.ts";
import { parseTrustRecord, rootState, verifyRotation, walkChain } from "../shared/trust.ts";
import type { SignedTrust, TrustState } from "../shared/trust.ts";
import { sideKey } from "../shared/trust-layout.ts";
import type { PlanFeed, StoreConfig, TrustSet } from "../shared/types.ts";

/** Rotations walked in one refresh at most (TUF's max_root_rotations): a flood of versions cannot hold the agent. */
const MAX_ROTATIONS = 256;

/** The trust set in force, kept current as rotations arrive, so verifiers never read a stale one. */
export interface TrustKeeper {
  /** The trust set envelopes and freshness records are verified with. */
  current(): TrustSet;
  version(): number;
  /** Fetch and adopt newer versions; resolves true when the version changed. Never throws. */
  refresh(): Promise<boolean>;
}

/**
 * Whether an envelope names a signer outside the trust in force: then a rotation may not have been
 * fetched yet (an agent back from offline), and the chain is read before the envelope is judged,
 * so a legitimate envelope is never counted as an `untrusted_signer` rejection.
 */
export const namesUnknownSigner = (envelope: Uint8Array, trust: TrustSet): boolean => {
  try {
    return parseEnvelope(envelope).signatures.some((s) => !trust.keys.has(s.keyId));
  } catch {
    return false;
  }
};

const chainPath = (stateDir: string): string => join(stateDir, "trust-chain.json");

/** The persisted chain verified again from the root; a chain that no longer verifies (new root) is dropped. */
const loadChain = (root: TrustState, path: string, log: Logger): { state: TrustState; chain: SignedTrust[] } => {
  if (!existsSync(path)) return { state: root, chain: [] };
  try {
    const chain = (JSON.parse(readFileSync(path, "utf8")) as unknown[]).map((r) =>
      parseTrustRecord(new TextEncoder().encode(JSON.stringify(r))),
    );
    // Adopted documents stay in force after they expire: expiry only bounds when one may be adopted.
    const state = chain.reduce<TrustState>((s, record) => verifyRotation(s, record), root);
    return { state, chain };
  } catch (error) {
    log.error("trust_chain_invalid", {
      path,
      reason: reasonOf(error),
      error: (error as Error).message,
      detail: "starting from the trust file",
    });
    return { state: root, chain: [] };
  }
};

/** Keep the agent's trust: the root from its trust file, rotations from the store (when the feed can read it). */
export const createTrustKeeper = (deps: {
  root: TrustSet;
  stateDir: string;
  store: Pick<StoreConfig, "kind">;
  feed: PlanFeed | null;
  log: Logger;
  now: () => number;
  onChange?: (version: number) => void;
}): TrustKeeper => {
  const { log, feed } = deps;
  const path = chainPath(deps.stateDir);
  let { state, chain } = loadChain(rootState(deps.root), path, log);
  let running: Promise<boolean> | null = null;
  let again = false;

  const fetchNewer = async (): Promise<SignedTrust[]> => {
    const records: SignedTrust[] = [];
    for (let version = state.version + 1; records.length < MAX_ROTATIONS; version++) {
      const bytes = await feed!.readSide!(sideKey(deps.store, { kind: "trust", version }));
      if (!bytes) break;
      records.push(parseTrustRecord(bytes));
    }
    return records;
  };

  const refreshOnce = async (): Promise<boolean> => {
    if (!feed?.readSide) return false;
    try {
      const records = await fetchNewer();
      if (records.length === 0) return false;
      const reached = walkChain(state, records, deps.now());
      const next = reached.at(-1)!;
      writeFileAtomic(path, JSON.stringify([...chain, ...records]), 0o600);
      chain = [...chain, ...records];
      log.info("trust_rotated", {
        from: state.version,
        to: next.version,
        key_ids: [...next.trust.keys.keys()],
        threshold: next.trust.threshold,
      });
      state = next;
      deps.onChange?.(state.version);
      return true;
    } catch (error) {
      log.warn("trust_refused", { version: state.version, reason: reasonOf(error), error: (error as Error).message });
      return false;
    }
  };

  // One refresh at a time; a request while one runs makes it run once more.
  const refresh = async (): Promise<boolean> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let changed = false;
      do {
        again = false;
        changed = (await refreshOnce()) || changed;
      } while (again);
      return changed;
    })().finally(() => (running = null));
    return running;
  };

  deps.onChange?.(state.version);
  return { current: () => state.trust, version: () => state.version, refresh };
};
