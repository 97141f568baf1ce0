// Plans kept for resume and revert are sealed in the coordinator database: a copy of the database
// shows no plan content, and its names confirm no guess of one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { planVault } from "../../../coordinator/rollout/plan-vault.ts";
import { FleetplanError } from "../../../shared/errors.ts";
import { adminKeyFromSeed, sodiumReady } from "../../../shared/mod.ts";

await sodiumReady();
const ADMIN = adminKeyFromSeed(new Uint8Array(32).fill(1));
const OTHER = adminKeyFromSeed(new Uint8Array(32).fill(2));
const PLAN = JSON.stringify({
  kind: "fleetplan/plan",
  v: 1,
  files: [],
  steps: [{ name: "s", run: "echo pin=493021", env: { TOKEN: "s3cret" } }],
});

describe("plan vault", () => {
  it("round-trips, hides the content and names it by a keyed hash", () => {
    const vault = planVault(ADMIN);
    const blob = vault.seal(PLAN);
    assert.equal(vault.open(blob, "x"), PLAN);
    const raw = Buffer.from(blob, "base64").toString("latin1");
    for (const secret of ["493021", "s3cret", "echo"]) assert.ok(!raw.includes(secret) && !blob.includes(secret), secret);
    assert.equal(vault.nameOf(PLAN), planVault(ADMIN).nameOf(PLAN), "deterministic for one admin key");
    assert.notEqual(vault.nameOf(PLAN), planVault(OTHER).nameOf(PLAN), "not an unkeyed hash anyone can recompute");
  });

  it("another admin key cannot open it, and says which key to use", () => {
    const blob = planVault(ADMIN).seal(PLAN);
    assert.throws(
      () => planVault(OTHER).open(blob, "abcdef0123456789ff"),
      (e: unknown) => e instanceof FleetplanError && e.reason === "bad_key" && /sealed with another admin key/.test(e.message),
    );
  });
});
