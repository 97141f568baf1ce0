// Provisioning ids: timestamp by default, never repeating or going down, always exact.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_PROVISIONING_ID, nextProvisioningId } from "../../coordinator/ids.ts";
import { timestampId } from "../../shared/ids.ts";

const at = (iso: string) => new Date(iso);

describe("nextProvisioningId", () => {
  it("is the UTC timestamp YYYYMMDDHHMMSS when nothing was issued", () => {
    assert.equal(nextProvisioningId(at("2025-03-07T09:05:01.999Z"), null), 20250307090501);
  });

  it("uses UTC whatever the date's local representation", () => {
    assert.equal(timestampId(at("2025-12-31T23:59:59+02:00")), 20251231215959);
  });

  it("is the timestamp when it is above the last issued id", () => {
    assert.equal(nextProvisioningId(at("2025-03-07T09:05:02Z"), 20250307090501), 20250307090502);
  });

  it("is last+1 for many pushes within one second", () => {
    const now = at("2025-03-07T09:05:01Z");
    let last: number | null = null;
    const ids: number[] = [];
    for (let i = 0; i < 1000; i++) ids.push((last = nextProvisioningId(now, last)));
    assert.equal(ids[0], 20250307090501);
    assert.equal(ids[999], 20250307090501 + 999);
    assert.ok(ids.every((id, i) => i === 0 || id === ids[i - 1]! + 1));
  });

  it("never goes down when the clock is set back", () => {
    const issued = nextProvisioningId(at("2025-03-07T09:05:01Z"), null);
    assert.equal(nextProvisioningId(at("2024-01-01T00:00:00Z"), issued), issued + 1);
  });

  it("keeps counting from an id far above any timestamp", () => {
    assert.equal(nextProvisioningId(at("2025-03-07T09:05:01Z"), 9_000_000_000_000_000), 9_000_000_000_000_001);
  });

  it("refuses to go beyond 2^53-1", () => {
    assert.equal(nextProvisioningId(at("2025-01-01T00:00:00Z"), MAX_PROVISIONING_ID - 1), MAX_PROVISIONING_ID);
    assert.throws(() => nextProvisioningId(at("2025-01-01T00:00:00Z"), MAX_PROVISIONING_ID), RangeError);
  });

  it("refuses a last id that is not a non-negative safe integer", () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => nextProvisioningId(at("2025-01-01T00:00:00Z"), bad), RangeError);
  });

  it("refuses an invalid clock", () => {
    assert.throws(() => nextProvisioningId(new Date(Number.NaN), null), RangeError);
  });
});
