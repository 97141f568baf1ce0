// The plan hash is no oracle (issue 12 item 9): a store reader who knows the template of a plan
// and guesses its secret cannot confirm the guess from the public hash, because each host's
// plan carries a salt derived from the coordinator's admin key. The hash stays deterministic
// per host and plan, so skip-if-converged still works.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bindPlan, planSaltKey } from "../../coordinator/plan-salt.ts";
import { adminKeyFromSeed, blake2bHex, planBytes, planFromScript, sodiumReady } from "../../shared/mod.ts";
import { planProblems } from "../../shared/plan.ts";

await sodiumReady();
const ADMIN = adminKeyFromSeed(new Uint8Array(32).fill(9));
const OTHER = adminKeyFromSeed(new Uint8Array(32).fill(10));
const template = (pin: string) => planFromScript(`echo 'pin=${pin}' > /etc/app.pin\n`, "pin");

describe("salted plan hashes", () => {
  it("a 6-digit secret in a known template cannot be confirmed from the public hash", () => {
    const key = planSaltKey(ADMIN);
    const published = bindPlan(template("493021"), key, "web-1").hash;
    // The attacker's best effort without the key: the unsalted hash of every guess.
    let confirmed = 0;
    for (let guess = 493000; guess < 493100; guess++) if (blake2bHex(planBytes(template(String(guess)))) === published) confirmed++;
    assert.equal(confirmed, 0);
    // With another admin key's derivation (a guess at the salt key) nothing matches either.
    assert.notEqual(bindPlan(template("493021"), planSaltKey(OTHER), "web-1").hash, published);
  });

  it("is deterministic per host and plan, differs between hosts, and yields a valid version-2 plan", () => {
    const key = planSaltKey(ADMIN);
    const a = bindPlan(template("1"), key, "web-1");
    assert.equal(bindPlan(template("1"), planSaltKey(ADMIN), "web-1").hash, a.hash);
    assert.notEqual(bindPlan(template("1"), key, "web-2").hash, a.hash);
    assert.notEqual(bindPlan(template("2"), key, "web-1").hash, a.hash);
    const plan = JSON.parse(new TextDecoder().decode(a.bytes));
    assert.deepEqual(planProblems(plan), []);
    assert.equal(plan.v, 2);
    assert.match(plan.salt, /^[0-9a-f]{64}$/);
    assert.equal(blake2bHex(a.bytes), a.hash);
  });
});
