// What the envelope fuzzer starts from: an agent's fixed view (keys, trust, clock, high-water
// mark 100), valid envelopes that must open (the controls), and complete attacks that a trusted
// key or a replaying store could produce, each of which must be refused. Forged envelopes come
// from test/shared/forge.ts, the same helper the per-attack tests use.
import { adminKeyFromSeed, blake2bHex, compressPlan, nodeKeyFromSeed, planBytes, sealEnvelope, sodium } from "../shared/mod.ts";
import type { AdminKeyPair, NodeKeyPair, OpenOptions, Plan, SealOptions } from "../shared/mod.ts";
import { forgeEnvelope, headerFor, sealTo } from "../test/shared/forge.ts";

export interface Corpus {
  admin: AdminKeyPair;
  outsider: AdminKeyPair;
  node: NodeKeyPair;
  otherNode: NodeKeyPair;
  open: OpenOptions;
  /** Envelopes that must open: mutation bases, and the controls proving the harness can accept. */
  valid: Uint8Array[];
  /** Whole attacks, each refused by a known step. */
  attacks: { name: string; bytes: Uint8Array }[];
}

export const HOST = "web-1.example.org";
export const NOW = 1_700_000_000_000;
export const HWM_ID = 100;
const BOMB_BYTES = 64 * 1024 * 1024;

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

/** A small plan; `salt` varies the content so envelopes differ in hash and length. */
const plan = (salt: number): Plan => ({
  kind: "fleetplan/plan",
  v: 1,
  files: [{ path: `/etc/fleet/${salt}.conf`, mode: 0o640, content: Buffer.alloc(salt * 37, salt).toString("base64") }],
  steps: [{ name: "apply", run: `echo ${salt}` }],
});

/** Build the corpus; sodium must be ready. Sealing is randomised (ephemeral keys), the choice of inputs is not. */
export const buildCorpus = (): Corpus => {
  const admin = adminKeyFromSeed(seed(0x11));
  const outsider = adminKeyFromSeed(seed(0x66));
  const node = nodeKeyFromSeed(seed(0x21));
  const otherNode = nodeKeyFromSeed(seed(0x22));
  const accepted = planBytes(plan(HWM_ID));
  const open: OpenOptions = {
    hostname: HOST,
    nodeKeys: node,
    trust: { keys: new Map([[admin.keyId, admin.publicKey]]), threshold: 1 },
    highWaterMark: { id: HWM_ID, planHash: blake2bHex(accepted) },
    now: NOW,
  };
  const options = (o: Partial<SealOptions> = {}): SealOptions => ({
    id: HWM_ID + 1,
    target: HOST,
    nodePublicKey: node.publicKey,
    signers: [admin],
    issued: NOW - 60_000,
    expires: NOW + 3_600_000,
    ...o,
  });
  const seal = (p: Plan | Uint8Array, o: Partial<SealOptions> = {}): Uint8Array => sealEnvelope(p, options(o));
  const valid = [0, 1, 2, 3, 7, 20].map((salt, i) => seal(plan(salt), { id: HWM_ID + 1 + i }));

  const plain = planBytes(plan(1));
  const fields = { id: HWM_ID + 1, target: HOST, recipient: node.keyId, issued: NOW - 60_000, expires: NOW + 3_600_000 };
  const forged = (header: Record<string, unknown>, payload: Uint8Array, to = node.publicKey) =>
    forgeEnvelope(header, sealTo(payload, to), [admin]);
  const zeros = new Uint8Array(BOMB_BYTES);
  const bomb = compressPlan(zeros);
  const bombHeader = headerFor(zeros, fields);
  const attacks = Object.entries({
    other_target: seal(plan(1), { target: "db-9.example.org" }),
    other_node: seal(plan(1), { nodePublicKey: otherNode.publicKey }),
    untrusted: seal(plan(1), { signers: [outsider] }),
    expired: seal(plan(1), { issued: NOW - 7_200_000, expires: NOW - 1 }),
    from_future: seal(plan(1), { issued: NOW + 3_600_000, expires: NOW + 7_200_000 }),
    duplicate: seal(accepted, { id: HWM_ID }),
    equal_id_other_plan: seal(plan(2), { id: HWM_ID }),
    lower_id: seal(plan(1), { id: HWM_ID - 1 }),
    id_one: seal(plan(1), { id: 1 }),
    bomb_honest_size: forged(bombHeader, bomb),
    bomb_lying_size: forged({ ...bombHeader, plan_size: 1000 }, bomb),
    decrypt_other_key: forged(headerFor(plain, fields), compressPlan(plain), otherNode.publicKey),
    not_zstd: forged(headerFor(plain, fields), sodium.randombytes_buf(300)),
    hash_mismatch: forged(headerFor(plain, fields, { plan_hash: blake2bHex(accepted) }), compressPlan(plain)),
    invalid_plan: seal(new TextEncoder().encode('{"kind":"fleetplan/plan","v":1,"files":[],"steps":[{"name":"x"}]}')),
    plan_id_mismatch: seal(planBytes({ ...plan(1), id: HWM_ID - 10 })),
  }).map(([name, bytes]) => ({ name, bytes }));
  return { admin, outsider, node, otherNode, open, valid, attacks };
};
