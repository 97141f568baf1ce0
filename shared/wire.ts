import { EnvelopeError } from "./errors.ts";
import { toHex } from "./hex.ts";
import type { EnvelopeHeader, EnvelopeLimits, EnvelopeParts } from "./types.ts";

// Envelope wire format v1 (big-endian):
// "FPE1" | version u8 | header_len u16 | header | ciphertext_len u32 | ciphertext
// | sig_count u8 | sig_count × (key_id 8 B | ed25519 signature 64 B)
export const MAGIC = new Uint8Array([0x46, 0x50, 0x45, 0x31]);
export const WIRE_VERSION = 1;
/** Signatures cover this prefix followed by every byte before the signature block. */
export const SIGNING_PREFIX = new TextEncoder().encode("fleetplan/envelope/v1\0");
export const SIG_ENTRY_BYTES = 72;
export const MAX_SIGNATURES = 16;
const FIXED_BYTES = 4 + 1 + 2 + 4 + 1;

export const DEFAULT_LIMITS: EnvelopeLimits = {
  maxEnvelopeBytes: 33 * 1024 * 1024,
  maxHeaderBytes: 4096,
  maxPlanBytes: 32 * 1024 * 1024,
  clockSkewMs: 5 * 60_000,
};

const HEX16 = /^[0-9a-f]{16}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

const hasMagic = (bytes: Uint8Array): boolean =>
  bytes[0] === MAGIC[0] && bytes[1] === MAGIC[1] && bytes[2] === MAGIC[2] && bytes[3] === MAGIC[3];

export const isValidHostname = (host: string): boolean => HOSTNAME.test(host) && !host.includes("..");
const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Assemble the signed part of an envelope: everything before the signature block. */
export const encodeSigned = (headerBytes: Uint8Array, ciphertext: Uint8Array, sigCount: number): Uint8Array => {
  const out = new Uint8Array(FIXED_BYTES + headerBytes.length + ciphertext.length + sigCount * SIG_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = WIRE_VERSION;
  view.setUint16(5, headerBytes.length);
  out.set(headerBytes, 7);
  view.setUint32(7 + headerBytes.length, ciphertext.length);
  out.set(ciphertext, 11 + headerBytes.length);
  out[11 + headerBytes.length + ciphertext.length] = sigCount;
  return out;
};

/** Byte offset of the signature count, i.e. the length of the signed region. */
export const signedLength = (headerBytes: Uint8Array, ciphertext: Uint8Array): number => 11 + headerBytes.length + ciphertext.length;

/** Step 1: size bounds, before anything is parsed. */
export const checkSizes = (bytes: Uint8Array, limits: EnvelopeLimits): void => {
  if (bytes.length > limits.maxEnvelopeBytes) {
    throw new EnvelopeError("too_large", `envelope is ${bytes.length} bytes, limit ${limits.maxEnvelopeBytes}`);
  }
  if (bytes.length < FIXED_BYTES) throw new EnvelopeError("malformed", `envelope is only ${bytes.length} bytes`);
  // Without the magic, bytes 5-6 are no header length: such input is left to framing to call `malformed`.
  const headerLen = (bytes[5]! << 8) | bytes[6]!;
  if (hasMagic(bytes) && headerLen > limits.maxHeaderBytes) {
    throw new EnvelopeError("too_large", `header is ${headerLen} bytes, limit ${limits.maxHeaderBytes}`);
  }
};

/** Step 2 (framing): split the wire bytes; nothing here is trusted yet. */
export const splitEnvelope = (bytes: Uint8Array): Omit<EnvelopeParts, "header"> => {
  if (!hasMagic(bytes)) throw new EnvelopeError("malformed", "not a fleetplan envelope (bad magic)");
  if (bytes[4] !== WIRE_VERSION) throw new EnvelopeError("unsupported_version", `envelope format version ${bytes[4]} is not supported`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getUint16(5);
  const ctLenAt = 7 + headerLen;
  if (ctLenAt + 4 > bytes.length) throw new EnvelopeError("malformed", "truncated header");
  const ctLen = view.getUint32(ctLenAt);
  const sigAt = ctLenAt + 4 + ctLen;
  if (sigAt + 1 > bytes.length) throw new EnvelopeError("malformed", "truncated ciphertext");
  const sigCount = bytes[sigAt]!;
  if (sigCount > MAX_SIGNATURES) throw new EnvelopeError("malformed", `${sigCount} signatures, at most ${MAX_SIGNATURES}`);
  if (bytes.length !== sigAt + 1 + sigCount * SIG_ENTRY_BYTES) {
    throw new EnvelopeError("malformed", "signature block length does not match the envelope length");
  }
  const signatures: EnvelopeParts["signatures"] = [];
  for (let at = sigAt + 1; at < bytes.length; at += SIG_ENTRY_BYTES) {
    signatures.push({ keyId: toHex(bytes.subarray(at, at + 8)), sig: bytes.subarray(at + 8, at + SIG_ENTRY_BYTES) });
  }
  return {
    headerBytes: bytes.subarray(7, ctLenAt),
    ciphertext: bytes.subarray(ctLenAt + 4, sigAt),
    signed: bytes.subarray(0, sigAt),
    signatures,
  };
};

const HEADER_FIELDS = ["codec", "expires", "id", "issued", "plan_hash", "plan_size", "recipient", "target", "v"].join();

// One decoder for every header: constructing one costs as much as decoding a header.
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Step 2 (header): strict, canonical JSON only; a parse failure is `malformed`, never a SyntaxError. */
export const parseHeader = (headerBytes: Uint8Array): EnvelopeHeader => {
  let value: unknown;
  let text: string;
  try {
    text = UTF8.decode(headerBytes);
    value = JSON.parse(text);
  } catch {
    throw new EnvelopeError("malformed", "header is not valid UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new EnvelopeError("malformed", "header is not a JSON object");
  const h = value as Record<string, unknown>;
  const id = Number.isSafeInteger(h.id) ? (h.id as number) : undefined;
  if (h.v !== 1) throw new EnvelopeError("unsupported_version", `header version ${JSON.stringify(h.v)} is not supported`, id);
  if (h.codec !== "zstd") throw new EnvelopeError("unsupported_version", `codec ${JSON.stringify(h.codec)} is not supported`, id);
  // Sorted keys are what canonical JSON requires; sorting is only needed to tell why not.
  const keys = Object.keys(h).join();
  const bad =
    keys !== HEADER_FIELDS && Object.keys(h).sort().join() !== HEADER_FIELDS
      ? "unexpected or missing fields"
      : !(id !== undefined && id > 0)
        ? "id must be a positive integer ≤ 2^53−1"
        : typeof h.target !== "string" || !isValidHostname(h.target)
          ? "target is not a hostname"
          : typeof h.recipient !== "string" || !HEX16.test(h.recipient)
            ? "recipient is not a key id"
            : !isTime(h.issued) || !isTime(h.expires)
              ? "issued/expires must be unix milliseconds"
              : typeof h.plan_hash !== "string" || !HEX64.test(h.plan_hash)
                ? "plan_hash is not BLAKE2b-256 hex"
                : !isTime(h.plan_size)
                  ? "plan_size must be a non-negative integer"
                  : // Keys in sorted order and only strings and safe integers as values: JSON.stringify then
                    // writes exactly canonicalJson's bytes, without its sort and re-encoding.
                    keys !== HEADER_FIELDS || JSON.stringify(h) !== text
                    ? "header is not canonical JSON"
                    : null;
  if (bad) throw new EnvelopeError("malformed", `header: ${bad}`, id);
  return h as unknown as EnvelopeHeader;
};
