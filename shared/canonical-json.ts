// Canonical JSON: object keys sorted, no whitespace, integers only as safe integers.
// Used for the signed header and plan bytes, so equal values always give equal bytes.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const encode = (value: unknown): string => {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("canonical JSON: non-finite number");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(encode).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${encode(v)}`).join(",")}}`;
  }
  throw new TypeError(`canonical JSON: unsupported ${typeof value}`);
};

/** Serialise to canonical JSON text. */
export const canonicalJson = (value: unknown): string => encode(value);

/** Serialise to canonical JSON UTF-8 bytes. */
export const canonicalBytes = (value: unknown): Uint8Array => new TextEncoder().encode(encode(value));

/** Domain ‖ canonical JSON of `value`: what every fleetplan signature covers, so a signature made
 * for one kind of record (status, trust, enrollment, …) can never verify as another. */
export const domainSeparated = (domain: string, value: unknown): Uint8Array => {
  const prefix = new TextEncoder().encode(domain);
  const body = canonicalBytes(value);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
};

export type { Json };
