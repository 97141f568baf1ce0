// The coordinator's view of the trust chain in the store: read and verify it, and decide the next
// rotation (pure: keys and the current state in, signed records out, or a coded error naming the fix).
import { canonicalBytes } from "../shared/canonical-json.ts";
import { FleetplanError, reasonOf } from "../shared/errors.ts";
import { keyIdOf } from "../shared/keys.ts";
import { parseTrustRecord, signTrust, trustDocument, verifyRoot, verifyRotation } from "../shared/trust.ts";
import type { SignedTrust, TrustState } from "../shared/trust.ts";
import { sideKey } from "../shared/trust-layout.ts";
import type { AdminKeyPair, StoreConfig, TrustSet } from "../shared/types.ts";
import type { KnownVersion } from "./trust-db.ts";
import type { SideStore } from "./trust-store.ts";

/** One verified link: the record as stored and the state it leads to. */
export interface ChainLink {
  record: SignedTrust;
  state: TrustState;
}

/**
 * Every version in the store from 1 on, verified link by link (expiry aside: adopted versions stay in force).
 * A record that does not extend the chain is refused naming its key: junk there blocks every later rotation.
 */
export const readTrustChain = async (side: SideStore, store: Pick<StoreConfig, "kind">): Promise<ChainLink[]> => {
  const links: ChainLink[] = [];
  for (let version = 1; ; version++) {
    const key = sideKey(store, { kind: "trust", version });
    const bytes = await side.get(key);
    if (!bytes) return links;
    try {
      const record = parseTrustRecord(bytes);
      const previous = links.at(-1)?.state;
      links.push({ record, state: previous ? verifyRotation(previous, record) : verifyRoot(record) });
    } catch (error) {
      throw new FleetplanError(
        reasonOf(error),
        `store key ${key}: ${(error as Error).message}; it was not published by a rotation (whoever can write the store ` +
          "put it there): delete that key, then run `fleetplan trust rotate` (it publishes the versions its database knows again)",
      );
    }
  }
};

const sameDocument = (a: SignedTrust, b: SignedTrust): boolean =>
  Buffer.from(canonicalBytes(a.trust)).equals(Buffer.from(canonicalBytes(b.trust)));

/**
 * The versions the coordinator database knows beyond the store's chain, verified on from its end, to
 * publish again: whoever can write the store can delete the newest versions, and a rotation built on
 * the shorter chain would be built on an older set (carrying a removed key back into a version the
 * agents adopt). `conflict` when a known version differs from the store's (a fork) or one is missing.
 */
export const missingLinks = (chain: ChainLink[], known: KnownVersion[]): (ChainLink & KnownVersion)[] => {
  const out: (ChainLink & KnownVersion)[] = [];
  let state = chain.at(-1)?.state;
  for (const { version, bytes } of known) {
    const record = parseTrustRecord(bytes);
    const stored = chain[version - 1];
    if (stored !== undefined) {
      if (!sameDocument(stored.record, record)) {
        throw new FleetplanError(
          "conflict",
          `trust version ${version} in the store is not the one this coordinator published or read: the chain was forked ` +
            "with the admin keys of an earlier version; find out who holds them before rotating",
        );
      }
      continue;
    }
    const expected = chain.length + out.length + 1;
    if (version !== expected) {
      throw new FleetplanError(
        "conflict",
        `the store's trust chain ends at version ${expected - 1}; this coordinator's database knows version ${version} but not ` +
          `${expected}: publish version ${expected} again from the coordinator that made it (or restore the store) before rotating`,
      );
    }
    state = state ? verifyRotation(state, record) : verifyRoot(record);
    out.push({ record, state, version, bytes });
  }
  return out;
};

/** A verified link as a record to remember (re-encoded: the signatures cover the canonical document, not these bytes). */
export const knownOf = (link: ChainLink): KnownVersion => ({
  version: link.state.version,
  bytes: new TextEncoder().encode(JSON.stringify(link.record)),
});

/** Everything a rotation is decided from, so the decision stays pure. */
export interface RotationInput {
  /** The chain in the store (empty before the first rotation). */
  chain: ChainLink[];
  /** The agents' trust file: version 1 when the chain is empty, else what the store's version 1 must say. */
  root: TrustSet;
  add: Uint8Array[];
  /** Key ids to remove. */
  remove: string[];
  threshold: number | null;
  signers: AdminKeyPair[];
  /** unix ms */
  expires: number;
}

const usage = (message: string) => new FleetplanError("invalid_argument", message);

/** Sign with every given key of `set`; refuse when fewer than its threshold are given. */
const signersOf = (set: TrustSet, signers: AdminKeyPair[], what: string): AdminKeyPair[] => {
  const mine = signers.filter((s) => set.keys.has(s.keyId));
  const have = new Set(mine.map((s) => s.keyId)).size;
  if (have < set.threshold) {
    throw usage(
      `${what} needs ${set.threshold} of the keys ${[...set.keys.keys()].join(", ")}; ${have} given: add their private keys with --admin-key`,
    );
  }
  return mine;
};

const sameSet = (a: TrustSet, b: TrustSet): boolean =>
  a.threshold === b.threshold && a.keys.size === b.keys.size && [...a.keys.keys()].every((id) => b.keys.has(id));

/**
 * Anyone who can write the store can write a version 1 of their own (it is self-signed): building on
 * it would carry their keys into a version the agents accept. The store's version 1 must be the root.
 */
const checkRoot = (chain: ChainLink[], root: TrustSet): void => {
  const first = chain[0]?.state.trust;
  if (first && !sameSet(first, root)) {
    const show = (set: TrustSet) => `${set.threshold} of ${[...set.keys.keys()].join(", ")}`;
    throw new FleetplanError(
      "conflict",
      `version 1 in the store (${show(first)}) is not the --root trust file (${show(root)}): ` +
        "it was not published from it; find out who can write the store before rotating",
    );
  }
};

/** The records to publish, in version order: version 1 first when the chain is empty, then the rotation. */
export const planRotation = (input: RotationInput): { version: number; bytes: Uint8Array; state: TrustState }[] => {
  const out: { version: number; bytes: Uint8Array; state: TrustState }[] = [];
  checkRoot(input.chain, input.root);
  let current = input.chain.at(-1)?.state;
  if (!current) {
    const doc = trustDocument(1, [...input.root.keys.values()], input.root.threshold, input.expires);
    const bytes = signTrust(doc, signersOf(input.root, input.signers, "version 1 (the trust file)"));
    current = verifyRoot(parseTrustRecord(bytes));
    out.push({ version: 1, bytes, state: current });
  }
  const keys = new Map(current.trust.keys);
  for (const id of input.remove) {
    if (!keys.delete(id))
      throw usage(`--remove: key ${id} is not in trust version ${current.version} (${[...current.trust.keys.keys()].join(", ")})`);
  }
  for (const key of input.add) {
    const id = keyIdOf(key);
    if (keys.has(id)) throw usage(`--add: key ${id} is already in the trust set`);
    keys.set(id, key);
  }
  if (keys.size === 0) throw usage("the rotation would leave no admin key: --add one");
  const threshold = input.threshold ?? current.trust.threshold;
  if (threshold > keys.size)
    throw usage(`threshold ${threshold} exceeds the ${keys.size} keys of the new set: give --threshold 1 to ${keys.size}`);
  const doc = trustDocument(current.version + 1, [...keys.values()], threshold, input.expires);
  const next: TrustSet = { keys, threshold };
  signersOf(current.trust, input.signers, `version ${current.version + 1} (the current set)`);
  signersOf(next, input.signers, `version ${current.version + 1} (the new set)`);
  const relevant = input.signers.filter((s) => current.trust.keys.has(s.keyId) || keys.has(s.keyId));
  const bytes = signTrust(doc, relevant);
  out.push({ version: doc.version, bytes, state: verifyRotation(current, parseTrustRecord(bytes)) });
  return out;
};
