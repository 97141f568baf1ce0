// zstd bombs: a tiny signed ciphertext that inflates to 64 MiB must be refused without the agent
// ever holding more than the declared (and capped) plan size.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compressPlan, DEFAULT_LIMITS } from "../../shared/mod.ts";
import { ADMIN, assertRejects, honestFields, NODE } from "./fixtures.ts";
import { forgeEnvelope, headerFor, sealTo } from "./forge.ts";

const BOMB_BYTES = 64 * 1024 * 1024;
const MiB = 1024 * 1024;

// Built once: 64 MiB of zeros compresses to a few KiB. The plaintext is dropped right away so
// the RSS measured around openEnvelope is the decoder's alone.
const { frame, header } = (() => {
  const zeros = new Uint8Array(BOMB_BYTES);
  return { frame: compressPlan(zeros), header: headerFor(zeros, honestFields) };
})();

describe("zstd bomb", () => {
  it("is small on the wire", () => assert.ok(frame.length < 64 * 1024, `frame is ${frame.length} bytes`));

  it("refuses an honest plan_size above maxPlanBytes (too_large) before decrypting", () => {
    assert.ok(BOMB_BYTES > DEFAULT_LIMITS.maxPlanBytes);
    const bomb = forgeEnvelope(header, sealTo(frame, NODE.publicKey), [ADMIN]);
    assert.match(assertRejects(bomb, "too_large").message, /declares/);
  });

  it("refuses an honest plan_size above a configured smaller limit (too_large)", () => {
    const small = forgeEnvelope({ ...header, plan_size: 2 * MiB }, sealTo(frame, NODE.publicKey), [ADMIN]);
    assertRejects(small, "too_large", { limits: { maxPlanBytes: MiB } });
  });

  it("refuses a plan_size that lies small (too_large) with bounded memory", () => {
    const bomb = forgeEnvelope({ ...header, plan_size: 1000 }, sealTo(frame, NODE.publicKey), [ADMIN]);
    const before = process.memoryUsage.rss();
    for (let i = 0; i < 20; i++) assert.match(assertRejects(bomb, "too_large").message, /beyond its declared/);
    const growth = process.memoryUsage.rss() - before;
    assert.ok(growth < 32 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB opening a ${BOMB_BYTES / MiB} MiB bomb`);
  });
});
