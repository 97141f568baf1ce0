// The fuzzer's mutations: every way a valid envelope can be damaged or abused, from random bit
// flips to header edits that a trusted key really signed. Each returns bytes that must not open
// (the caller treats a result equal to a valid envelope as a control, not a mutation).
import { DEFAULT_LIMITS } from "../shared/mod.ts";
import { splitEnvelope } from "../shared/wire.ts";
import { forgeEnvelope, resign } from "../test/shared/forge.ts";
import type { HeaderFields } from "../test/shared/forge.ts";
import { HOST, HWM_ID, NOW } from "./fuzz-corpus.ts";
import type { Corpus } from "./fuzz-corpus.ts";

/** Seeded PRNG (mulberry32): the same seed gives the same sequence of mutations. */
export const makeRng = (seed: number) => {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, bytes, pick };
};
export type Rng = ReturnType<typeof makeRng>;

export type Mutation = (base: Uint8Array, corpus: Corpus, rng: Rng) => Uint8Array;

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const hex = (rng: Rng, n: number): string => Buffer.from(rng.bytes(n)).toString("hex");

/** Values of every JSON type and the edges of each header field's range. */
const ODD_VALUES = (rng: Rng): unknown[] => [
  0,
  -1,
  1,
  1.5,
  2 ** 53,
  2 ** 53 - 1,
  -0,
  1e308,
  "",
  "x",
  null,
  true,
  [],
  {},
  HOST,
  "web-1.example.org.",
  "../x",
  NOW,
  rng.int(2 ** 31),
  hex(rng, 8),
  hex(rng, 32),
  "\u0000",
  "a".repeat(rng.int(5000)),
];
const FIELDS = ["v", "id", "target", "recipient", "issued", "expires", "plan_hash", "plan_size", "codec", "extra"];

/** Header edits a trusted key may sign that are nonetheless invalid for this agent, by construction. */
const INVALID_SIGNED_EDITS: ((h: HeaderFields, c: Corpus, rng: Rng) => HeaderFields)[] = [
  (h) => ({ ...h, target: "db-9.example.org" }),
  (h, c) => ({ ...h, recipient: c.otherNode.keyId }),
  (h, _, rng) => ({ ...h, recipient: hex(rng, 8) }),
  (h, _, rng) => ({ ...h, expires: NOW - rng.int(1e9) }),
  (h, _, rng) => ({ ...h, issued: NOW + 300_001 + rng.int(1e9) }),
  (h, _, rng) => ({ ...h, id: 1 + rng.int(HWM_ID) }),
  (h, _, rng) => ({ ...h, plan_hash: hex(rng, 32) }),
  (h, _, rng) => ({ ...h, plan_size: (h.plan_size as number) + 1 + rng.int(100) }),
  (h, _, rng) => ({ ...h, plan_size: rng.int(h.plan_size as number) }),
  (h, _, rng) => ({ ...h, plan_size: DEFAULT_LIMITS.maxPlanBytes + 1 + rng.int(2 ** 40) }),
  (h, _, rng) => ({ ...h, v: rng.pick([0, 2, "1", null]) }),
  (h, _, rng) => ({ ...h, codec: rng.pick(["gzip", "none", "ZSTD", ""]) }),
  (h, _, rng) => ({ ...h, [rng.pick(["extra", "exec", "__proto__x"])]: 1 }),
  (h, _, rng) => ({ ...h, id: rng.pick([1.5, "101", -101, 0, 2 ** 53]) }),
];

export const MUTATIONS: Record<string, Mutation> = {
  bit_flip: (base, _, rng) => {
    const out = Uint8Array.from(base);
    for (let n = 1 + rng.int(4); n > 0; n--) out[rng.int(out.length)]! ^= 1 << rng.int(8);
    return out;
  },
  byte_set: (base, _, rng) => {
    const out = Uint8Array.from(base);
    for (let n = 1 + rng.int(8); n > 0; n--) out[rng.int(out.length)] = rng.int(256);
    return out;
  },
  truncate: (base, _, rng) => base.slice(0, rng.int(base.length)),
  extend: (base, _, rng) => concat(base, rng.bytes(1 + rng.int(128))),
  splice: (base, c, rng) => {
    const other = rng.pick([...c.valid, ...c.attacks.map((a) => a.bytes)]);
    const from = rng.int(other.length);
    const slice = other.subarray(from, from + 1 + rng.int(other.length - from));
    const out = Uint8Array.from(base);
    const at = rng.int(out.length);
    out.set(slice.subarray(0, out.length - at), at);
    return out;
  },
  signature_from_other_envelope: (base, c, rng) => {
    const other = rng.pick([...c.valid, ...c.attacks.map((a) => a.bytes)]);
    return concat(base.subarray(0, base.length - 72), other.subarray(other.length - 72));
  },
  size_fields: (base, _, rng) => {
    const out = Uint8Array.from(base);
    const view = new DataView(out.buffer);
    const headerLen = view.getUint16(5);
    const choice = rng.int(3);
    if (choice === 0)
      view.setUint16(5, rng.pick([0, 0xffff, DEFAULT_LIMITS.maxHeaderBytes + 1, headerLen + 1, headerLen - 1, rng.int(0x10000)]));
    else if (choice === 1)
      view.setUint32(7 + headerLen, rng.pick([0, 0xffffffff, 2 ** 31, rng.int(2 ** 32), view.getUint32(7 + headerLen) + 1]));
    else out[out.length - 73] = rng.pick([0, 2, 16, 17, 255, rng.int(256)]);
    return out;
  },
  header_edit_untrusted: (base, c, rng) =>
    resign(
      base,
      (h) => {
        const field = rng.pick(FIELDS);
        if (rng.int(4) === 0) return Object.fromEntries(Object.entries(h).filter(([k]) => k !== field));
        return { ...h, [field]: rng.pick(ODD_VALUES(rng)) };
      },
      [c.outsider],
    ),
  header_edit_untrusted_relabelled: (base, c) => resign(base, (h) => h, [{ keyId: c.admin.keyId, privateKey: c.outsider.privateKey }]),
  header_edit_trusted_invalid: (base, c, rng) => resign(base, (h) => rng.pick(INVALID_SIGNED_EDITS)(h, c, rng), [c.admin]),
  header_garbage_signed: (base, c, rng) => {
    const garbage = rng.int(2) === 0 ? rng.bytes(rng.int(300)) : new TextEncoder().encode(JSON.stringify(rng.pick(ODD_VALUES(rng))));
    return forgeEnvelope(garbage, splitEnvelope(base).ciphertext, [c.admin]);
  },
  known_attack: (_, c, rng) => rng.pick(c.attacks).bytes,
  random_bytes: (_, __, rng) => {
    const tail = rng.bytes(rng.int(600));
    return rng.int(2) === 0 ? concat(new Uint8Array([0x46, 0x50, 0x45, 0x31, 0x01]), tail) : tail;
  },
};
