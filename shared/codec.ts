import { createRequire } from "node:module";
import type binding from "zstd-napi/binding.js";
import { EnvelopeError } from "./errors.ts";

// Loaded at the first plan, not at start: an idle agent does not hold the native module (bench/idle.ts).
const require = createRequire(import.meta.url);
let zstd: typeof import("zstd-napi") | undefined;
let zstdBinding: typeof binding | undefined;

/** zstd-compress plan bytes. */
export const compressPlan = (plain: Uint8Array, level = 3): Uint8Array =>
  (zstd ??= require("zstd-napi") as typeof import("zstd-napi")).compress(plain, { compressionLevel: level });

// One reusable context: creating a DCtx per envelope costs more than the decode of a small plan.
let sharedDctx: InstanceType<typeof binding.DCtx> | undefined;

/** zstd's message when the output would not fit the buffer it was given. */
const DST_TOO_SMALL = "Destination buffer is too small";

/**
 * Decompress into `out`, one byte longer than the plan's declared size, and never more: a frame
 * that would produce more is `too_large`, whatever its header claims; the spare byte detects
 * it. One-shot decoding writes straight into that buffer (no window buffer of the frame's
 * choosing), so memory stays bounded by the (already capped) declared size. Returns the
 * declared size's bytes, a view of `out`.
 */
export const decompressPlan = (compressed: Uint8Array, out: Uint8Array, id?: number): Uint8Array => {
  const expectedSize = out.length - 1;
  const tooLarge = () => new EnvelopeError("too_large", `plan decompresses beyond its declared ${expectedSize} bytes`, id);
  // An empty input would decode to zero bytes without a frame ever being seen.
  if (compressed.length === 0) throw new EnvelopeError("decompress_failed", "zstd: no frame", id);
  sharedDctx ??= new (zstdBinding ??= require("zstd-napi/binding.js") as typeof binding).DCtx();
  let produced: number;
  try {
    produced = sharedDctx.decompress(out, compressed);
  } catch (error) {
    const message = (error as Error).message;
    if (message === DST_TOO_SMALL) throw tooLarge();
    throw new EnvelopeError("decompress_failed", `zstd: ${message}`, id, { cause: error });
  }
  if (produced > expectedSize) throw tooLarge();
  if (produced !== expectedSize) {
    throw new EnvelopeError("decompress_failed", `plan is ${produced} bytes, header declares ${expectedSize}`, id);
  }
  return out.subarray(0, produced);
};
