// Steps 1–2: oversized, malformed and unknown-version envelopes die before any crypto runs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compressPlan, DEFAULT_LIMITS, planBytes } from "../../shared/mod.ts";
import { ADMIN, assertRejects, honestFields, NODE, samplePlan, seal } from "./fixtures.ts";
import { forgeEnvelope, headerFor, headerOf, resign, sealTo } from "./forge.ts";

const valid = seal();
const patched = (edit: (bytes: Uint8Array) => void): Uint8Array => {
  const copy = Uint8Array.from(valid);
  edit(copy);
  return copy;
};

describe("too_large", () => {
  it("refuses an envelope above maxEnvelopeBytes before parsing it", () => {
    const huge = new Uint8Array(DEFAULT_LIMITS.maxEnvelopeBytes + 1);
    huge.set(valid.subarray(0, 64));
    assertRejects(huge, "too_large");
  });

  it("honours a smaller configured envelope limit", () => {
    assertRejects(valid, "too_large", { limits: { maxEnvelopeBytes: valid.length - 1 } });
  });

  it("refuses a header_len above maxHeaderBytes", () => {
    const big = DEFAULT_LIMITS.maxHeaderBytes + 1;
    assertRejects(
      patched((b) => {
        b[5] = big >> 8;
        b[6] = big & 0xff;
      }),
      "too_large",
    );
  });
});

describe("malformed", () => {
  it("refuses bad magic", () => {
    assertRejects(
      patched((b) => {
        b[0] = 0x58;
      }),
      "malformed",
    );
  });

  it("calls garbage whose bytes 5-6 read as a huge header length malformed, not too_large", () => {
    const garbage = new TextEncoder().encode("#!/bin/sh\necho this is a script, not an envelope\n");
    assert.ok(((garbage[5]! << 8) | garbage[6]!) > DEFAULT_LIMITS.maxHeaderBytes);
    assertRejects(garbage, "malformed");
  });

  it("refuses an envelope shorter than the fixed fields", () => {
    assertRejects(valid.subarray(0, 11), "malformed");
  });

  it("refuses an envelope truncated by one byte", () => {
    assertRejects(valid.subarray(0, valid.length - 1), "malformed");
  });

  it("refuses an envelope truncated inside the header", () => {
    assertRejects(valid.subarray(0, 40), "malformed");
  });

  it("refuses a trailing byte after the signature block", () => {
    const longer = new Uint8Array(valid.length + 1);
    longer.set(valid);
    assertRejects(longer, "malformed");
  });

  it("refuses a ciphertext_len pointing past the end", () => {
    const at = 7 + ((valid[5]! << 8) | valid[6]!);
    assertRejects(
      patched((b) => b.set([0xff, 0xff, 0xff, 0xff], at)),
      "malformed",
    );
  });

  it("refuses more than 16 signature entries", () => {
    const sigAt = valid.length - 73;
    assertRejects(
      patched((b) => {
        b[sigAt] = 17;
      }),
      "malformed",
    );
  });

  it("refuses a non-canonical header even when a trusted key signed it", () => {
    const header = headerOf(valid);
    const pretty = new TextEncoder().encode(JSON.stringify(header, null, 1));
    assert.match(
      assertRejects(
        resign(valid, () => pretty, [ADMIN]),
        "malformed",
      ).message,
      /canonical/,
    );
  });

  it("refuses a header with unsorted keys even when a trusted key signed it", () => {
    // "codec" sorts first; written last the header is the same object in non-canonical bytes.
    const { codec, ...rest } = headerOf(valid);
    const unsorted = new TextEncoder().encode(JSON.stringify({ ...rest, codec }));
    assert.match(
      assertRejects(
        resign(valid, () => unsorted, [ADMIN]),
        "malformed",
      ).message,
      /canonical/,
    );
  });

  it("refuses a header with a duplicate key even when a trusted key signed it", () => {
    const text = JSON.stringify(headerOf(valid));
    const duplicated = new TextEncoder().encode(text.replace('"codec":"zstd"', '"codec":"zstd","codec":"zstd"'));
    assert.match(
      assertRejects(
        resign(valid, () => duplicated, [ADMIN]),
        "malformed",
      ).message,
      /canonical/,
    );
  });

  it("refuses a header that is not JSON even when a trusted key signed it", () => {
    assertRejects(
      resign(valid, () => new Uint8Array([0xc3, 0x28, 0x7b]), [ADMIN]),
      "malformed",
    );
  });

  it("refuses a header with an extra field even when a trusted key signed it", () => {
    assertRejects(
      resign(valid, (h) => ({ ...h, exec: "rm -rf /" }), [ADMIN]),
      "malformed",
    );
  });

  for (const [field, value] of [
    ["id", 0],
    ["id", 2 ** 53],
    ["target", "../etc"],
    ["recipient", "XYZ"],
    ["expires", -1],
    ["plan_hash", "00"],
    ["plan_size", 1.5],
  ] as const) {
    it(`refuses header ${field}=${JSON.stringify(value)} even when a trusted key signed it`, () => {
      assertRejects(
        resign(valid, (h) => ({ ...h, [field]: value }), [ADMIN]),
        "malformed",
      );
    });
  }
});

describe("unsupported_version", () => {
  it("refuses an unknown wire version byte", () => {
    assertRejects(
      patched((b) => {
        b[4] = 2;
      }),
      "unsupported_version",
    );
  });

  it("refuses header v=2 even when a trusted key signed it", () => {
    assertRejects(
      resign(valid, (h) => ({ ...h, v: 2 }), [ADMIN]),
      "unsupported_version",
    );
  });

  it("refuses an unknown codec even when a trusted key signed it", () => {
    const plain = planBytes(samplePlan());
    const forged = forgeEnvelope(headerFor(plain, honestFields, { codec: "gzip" }), sealTo(compressPlan(plain), NODE.publicKey), [ADMIN]);
    const error = assertRejects(forged, "unsupported_version");
    assert.equal(error.id, honestFields.id);
  });
});
