import { canonicalBytes } from "./canonical-json.ts";
import { compressPlan, decompressPlan } from "./codec.ts";
import { EnvelopeError } from "./errors.ts";
import { maxIdAt } from "./ids.ts";
import { blake2bHex, keyIdOf } from "./keys.ts";
import { planBytes, planProblems } from "./plan.ts";
import { reusableBuffer } from "./scratch.ts";
import { sealedBox } from "./sealed-box.ts";
import { sodium } from "./sodium.ts";
import type { EnvelopeHeader, EnvelopeLimits, EnvelopeParts, OpenedEnvelope, OpenOptions, Plan, SealOptions, TrustSet } from "./types.ts";
import {
  checkSizes,
  DEFAULT_LIMITS,
  encodeSigned,
  parseHeader,
  SIG_ENTRY_BYTES,
  SIGNING_PREFIX,
  signedLength,
  splitEnvelope,
} from "./wire.ts";

const messageBuffer = reusableBuffer();
/** The signed message: domain prefix + signed bytes (public), in a buffer reused across calls. */
const withPrefix = (signed: Uint8Array): Uint8Array => {
  const message = messageBuffer(SIGNING_PREFIX.length + signed.length);
  message.set(SIGNING_PREFIX, 0);
  message.set(signed, SIGNING_PREFIX.length);
  return message;
};

/** Compress, encrypt to the node key, sign with every signer. Plan bytes are taken as given. */
export const sealEnvelope = (plan: Plan | Uint8Array, options: SealOptions): Uint8Array => {
  const plain = plan instanceof Uint8Array ? plan : planBytes(plan);
  if (!Number.isSafeInteger(options.id) || options.id <= 0)
    throw new RangeError(`provisioning id must be a positive integer ≤ 2^53−1, got ${options.id}`);
  if (options.signers.length === 0) throw new RangeError("at least one signer is required");
  const header: EnvelopeHeader = {
    v: 1,
    id: options.id,
    target: options.target,
    recipient: keyIdOf(options.nodePublicKey),
    issued: options.issued ?? Date.now(),
    expires: options.expires,
    plan_hash: blake2bHex(plain),
    plan_size: plain.length,
    codec: "zstd",
  };
  const ciphertext = sealedBox(compressPlan(plain, options.level), options.nodePublicKey);
  const headerBytes = canonicalBytes(header);
  const out = encodeSigned(headerBytes, ciphertext, options.signers.length);
  const signedEnd = signedLength(headerBytes, ciphertext);
  const message = withPrefix(out.subarray(0, signedEnd));
  options.signers.forEach((signer, i) => {
    const at = signedEnd + 1 + i * SIG_ENTRY_BYTES;
    out.set(sodium.from_hex(signer.keyId), at);
    out.set(sodium.crypto_sign_detached(message, signer.privateKey), at + 8);
  });
  return out;
};

/** Steps 1–2: bounds, framing, header. Nothing is trusted yet. */
export const parseEnvelope = (bytes: Uint8Array, limits: EnvelopeLimits = DEFAULT_LIMITS): EnvelopeParts => {
  checkSizes(bytes, limits);
  const { headerBytes, ciphertext, signed, signatures } = splitEnvelope(bytes);
  return { header: parseHeader(headerBytes), headerBytes, ciphertext, signed, signatures };
};

/**
 * Step 3: at least `threshold` valid signatures from distinct trusted keys.
 * A trusted key id with an invalid signature is tampering (`bad_signature`); too few
 * trusted signers is `untrusted_signer`. Returns the ids of the keys that signed.
 */
export const verifySignatures = (parts: EnvelopeParts, trust: TrustSet): string[] => {
  const valid: string[] = [];
  // Each trusted key is checked once: repeated entries for one key id cost nothing extra.
  const tried: string[] = [];
  let forged = false;
  let message: Uint8Array | undefined;
  for (const { keyId, sig } of parts.signatures) {
    const key = trust.keys.get(keyId);
    if (!key || tried.includes(keyId)) continue;
    tried.push(keyId);
    message ??= withPrefix(parts.signed);
    if (sodium.crypto_sign_verify_detached(sig, message, key)) valid.push(keyId);
    else forged = true;
    if (valid.length >= trust.threshold) return valid;
  }
  const id = parts.header.id;
  if (forged) throw new EnvelopeError("bad_signature", "a signature from a trusted key does not verify", id);
  throw new EnvelopeError(
    "untrusted_signer",
    `${valid.length} valid signature(s) from distinct trusted keys, ${trust.threshold} required`,
    id,
  );
};

/** Step 4: meant for this host and this node key. */
const checkTarget = (header: EnvelopeHeader, hostname: string, recipient: string): void => {
  if (header.target !== hostname)
    throw new EnvelopeError("wrong_target", `envelope is for ${header.target}, this is ${hostname}`, header.id);
  if (header.recipient !== recipient)
    throw new EnvelopeError("wrong_target", `envelope is for node key ${header.recipient}, this node is ${recipient}`, header.id);
};

/** Step 5: within its validity window, allowing for clock skew on `issued`. */
const checkTime = (header: EnvelopeHeader, now: number, skewMs: number): void => {
  if (header.expires <= now) throw new EnvelopeError("expired", `envelope expired at ${new Date(header.expires).toISOString()}`, header.id);
  if (header.issued > now + skewMs)
    throw new EnvelopeError(
      "from_future",
      `envelope issued at ${new Date(header.issued).toISOString()}, beyond the allowed clock skew`,
      header.id,
    );
  // An id may not run ahead of its own issue time: a stolen key cannot fast-forward a host.
  const maxId = maxIdAt(header.issued, skewMs);
  if (header.id > maxId)
    throw new EnvelopeError("from_future", `id ${header.id} runs ahead of its issue time (at most ${maxId})`, header.id);
};

/**
 * Step 6, first half, checked before the validity window: the very envelope already accepted
 * is a benign duplicate even once it has expired (an agent restarting days after a push reads
 * it again from the store, and that must not look like a rejection).
 */
const checkDuplicate = (header: EnvelopeHeader, hwm: OpenOptions["highWaterMark"]): void => {
  if (header.id === hwm.id && header.plan_hash === hwm.planHash)
    throw new EnvelopeError("duplicate", `envelope ${header.id} was already accepted`, header.id);
};

/** Step 6: strictly above the high-water mark (replay and rollback). */
const checkFreshness = (header: EnvelopeHeader, hwm: OpenOptions["highWaterMark"]): void => {
  if (header.id <= hwm.id) throw new EnvelopeError("stale", `id ${header.id} is not above the last accepted id ${hwm.id}`, header.id);
};

const plainBuffer = reusableBuffer();

/** Step 7: decrypt, decompress under a cap, check the hash, validate the plan. */
const decryptPlan = (parts: EnvelopeParts, nodeKeys: OpenOptions["nodeKeys"], limits: EnvelopeLimits): Plan => {
  const { header } = parts;
  if (header.plan_size > limits.maxPlanBytes)
    throw new EnvelopeError("too_large", `plan declares ${header.plan_size} bytes, limit ${limits.maxPlanBytes}`, header.id);
  let compressed: Uint8Array;
  try {
    compressed = sodium.crypto_box_seal_open(parts.ciphertext, nodeKeys.publicKey, nodeKeys.privateKey);
  } catch {
    throw new EnvelopeError("decrypt_failed", "ciphertext does not open with this node's key", header.id);
  }
  // One spare byte detects output beyond the declared size.
  const out = plainBuffer(header.plan_size + 1);
  try {
    const bytes = decompressPlan(compressed, out, header.id);
    if (blake2bHex(bytes) !== header.plan_hash) throw new EnvelopeError("hash_mismatch", "plan hash does not match the header", header.id);
    return parsePlanBytes(bytes, header);
  } finally {
    // The plaintext may hold secrets: it does not outlive this call in the reused buffer.
    out.fill(0);
  }
};

// Reused: a fatal TextDecoder holds no state between complete (non-streaming) decodes.
const UTF8 = new TextDecoder("utf-8", { fatal: true });

const parsePlanBytes = (bytes: Uint8Array, header: EnvelopeHeader): Plan => {
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(bytes));
  } catch {
    throw new EnvelopeError("invalid_plan", "plan is not valid UTF-8 JSON", header.id);
  }
  const problems = planProblems(value);
  const plan = value as Plan;
  if (problems.length === 0 && plan.id !== undefined && plan.id !== header.id) problems.push("plan.id differs from the envelope id");
  if (problems.length === 0 && plan.target !== undefined && plan.target !== header.target)
    problems.push("plan.target differs from the envelope target");
  if (problems.length > 0) throw new EnvelopeError("invalid_plan", `plan: ${problems.slice(0, 5).join("; ")}`, header.id);
  return plan;
};

/** docs/protocol.md's verification order, cheapest first, failing closed with a coded error. */
export const openEnvelope = (bytes: Uint8Array, options: OpenOptions): OpenedEnvelope => {
  const limits = options.limits ? { ...DEFAULT_LIMITS, ...options.limits } : DEFAULT_LIMITS;
  // 1–2. size bounds, magic, version, header
  const parts = parseEnvelope(bytes, limits);
  // 3. signatures, before anything is decrypted or decompressed
  const signerIds = verifySignatures(parts, options.trust);
  // 4. this host, this node key
  checkTarget(parts.header, options.hostname, options.nodeKeys.keyId);
  // 6a. the envelope already accepted: benign, expired or not
  checkDuplicate(parts.header, options.highWaterMark);
  // 5. validity window
  checkTime(parts.header, options.now, limits.clockSkewMs);
  // 6b. replay and rollback
  checkFreshness(parts.header, options.highWaterMark);
  // 7. decrypt, decompress, hash, plan
  const plan = decryptPlan(parts, options.nodeKeys, limits);
  return { header: parts.header, signerIds, plan };
};
