// Plan files: the extension (any case) decides between a plan document and a script; any other
// name is refused, so a JSON plan saved as `.JSON` or `.txt` never runs as a bash script.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadPlanDir, loadPlanFile } from "../../coordinator/plan-source.ts";
import type { LoadedPlan } from "../../coordinator/plan-source.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { blake2bHex } from "../../shared/keys.ts";
import { planBytes, planFromScript } from "../../shared/plan.ts";
import type { Plan } from "../../shared/types.ts";
import { sodiumReady } from "../../shared/sodium.ts";

await sodiumReady();
const dir = mkdtempSync(join(tmpdir(), "fleetplan-plans-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const PLAN: Plan = { kind: "fleetplan/plan", v: 1, files: [], steps: [{ name: "hello", run: "echo hello" }] };
const PLAN_HASH = blake2bHex(planBytes(PLAN));
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const hashOf = (loaded: LoadedPlan) => blake2bHex(planBytes(loaded.plan));
const invalid = (pattern: RegExp) => (e: unknown) =>
  e instanceof FleetplanError && e.reason === "invalid_argument" && pattern.test(e.message);

describe("loadPlanFile", () => {
  it("reads .json in any case as a plan document", () => {
    for (const name of ["a.json", "b.JSON", "c.Json"])
      assert.equal(hashOf(loadPlanFile(write(name, JSON.stringify(PLAN)))), PLAN_HASH, name);
  });

  it("reads .sh in any case as a one-step script", () => {
    const hash = blake2bHex(planBytes(planFromScript("echo hi\n", "d.SH")));
    assert.equal(hashOf(loadPlanFile(write("d.SH", "echo hi\n"))), hash);
  });

  it("refuses any other name, naming the file and the accepted extensions", () => {
    for (const name of ["plan.txt", "plan", "plan.json.bak", "plan.bash"]) {
      const path = write(name, JSON.stringify(PLAN));
      assert.throws(
        () => loadPlanFile(path),
        invalid(
          new RegExp(`^${path.replace(/\./g, "\\.")}: a plan file must end in \\.json \\(a plan document\\) or \\.sh \\(a script\\)$`),
        ),
        name,
      );
    }
  });
});

describe("loadPlanDir", () => {
  it("finds HOST.json / HOST.sh in any extension case, and calls two for one host ambiguous", () => {
    const plans = join(dir, "per-host");
    mkdirSync(plans);
    writeFileSync(join(plans, "web-1.JSON"), JSON.stringify(PLAN));
    writeFileSync(join(plans, "web-2.Sh"), "echo two\n");
    writeFileSync(join(plans, "web-3.json"), JSON.stringify(PLAN));
    writeFileSync(join(plans, "web-3.SH"), "echo three\n");
    writeFileSync(join(plans, "web-4.txt"), "echo four\n");
    const loaded = loadPlanDir(plans, ["web-1", "web-2"]);
    assert.equal(hashOf(loaded.get("web-1")!), PLAN_HASH);
    assert.equal(hashOf(loaded.get("web-2")!), blake2bHex(planBytes(planFromScript("echo two\n", "web-2.Sh"))));
    assert.throws(
      () => loadPlanDir(plans, ["web-3", "web-4"]),
      invalid(/web-3: web-3\.(json and web-3\.SH|SH and web-3\.json) in .*\n.*web-4: no web-4\.json or web-4\.sh in/),
    );
  });
});
