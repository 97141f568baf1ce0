import { compress } from "zstd-napi";
import binding from "zstd-napi/binding.js";
import { EnvelopeError } from "./errors.ts";

// Bounds decoder memory: a hostile frame cannot ask for a window above 32 MiB.
const WINDOW_LOG_MAX = 25;

/** zstd-compress plan bytes. */
export const compressPlan = (plain: Uint8Array, level = 3): Uint8Array =>
  compress(plain, { compressionLevel: level });

// One reusable context: creating a DCtx per envelope costs more than the decode of a small plan.
let sharedDctx: InstanceType<typeof binding.DCtx> | undefined;
const decoder = () => {
  sharedDctx ??= new binding.DCtx();
  sharedDctx.reset(binding.ResetDirective.sessionAndParameters);
  sharedDctx.setParameter(binding.DParameter.windowLogMax, WINDOW_LOG_MAX);
  return sharedDctx;
};

/**
 * Decompress into a buffer of exactly `expectedSize` bytes and never more: a frame that
 * would produce more is `too_large`, whatever its header claims. Memory stays bounded by
 * the (already capped) expected size.
 */
export const decompressPlan = (compressed: Uint8Array, expectedSize: number, id?: number): Uint8Array => {
  const dctx = decoder();
  // One spare byte detects output beyond the declared size.
  const out = new Uint8Array(expectedSize + 1);
  let produced = 0;
  let consumed = 0;
  let remaining = 1;
  try {
    while (consumed < compressed.length || remaining !== 0) {
      const [ret, wrote, read] = dctx.decompressStream(out.subarray(produced), compressed.subarray(consumed));
      produced += wrote;
      consumed += read;
      remaining = ret;
      if (produced > expectedSize) {
        throw new EnvelopeError("too_large", `plan decompresses beyond its declared ${expectedSize} bytes`, id);
      }
      if (wrote === 0 && read === 0) break;
    }
  } catch (error) {
    if (error instanceof EnvelopeError) throw error;
    throw new EnvelopeError("decompress_failed", `zstd: ${(error as Error).message}`, id, { cause: error });
  }
  if (remaining !== 0 || consumed !== compressed.length) {
    throw new EnvelopeError("decompress_failed", "zstd frame truncated or followed by trailing bytes", id);
  }
  if (produced !== expectedSize) {
    throw new EnvelopeError("decompress_failed", `plan is ${produced} bytes, header declares ${expectedSize}`, id);
  }
  return out.subarray(0, produced);
};
