/**
 * Buffers reused from one envelope to the next, for envelopes and plans up to this size. A fresh
 * buffer per envelope costs the open path an allocation, GC work and cold cache lines that slow
 * the libsodium calls after it (bench/envelope.ts); larger inputs get a buffer of their own.
 */
const REUSE_MAX = 64 * 1024;

/**
 * A source of byte buffers: each call returns `length` bytes, valid until the next call on the
 * same source. Only for synchronous use; contents are left over from the previous call.
 */
export const reusableBuffer = (): ((length: number) => Uint8Array) => {
  let buffer: Uint8Array | undefined;
  return (length) => {
    if (length > REUSE_MAX) return new Uint8Array(length);
    buffer ??= new Uint8Array(REUSE_MAX);
    return buffer.subarray(0, length);
  };
};
