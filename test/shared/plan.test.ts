// Plan documents: every invalid field is reported by its path, normalisation is total, and the
// canonical bytes (which are hashed and signed) do not depend on how the JSON was written.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalBytes, normalizePlan, planBytes, planFromScript, planProblems, PLAN_LIMITS } from "../../shared/mod.ts";
import type { Plan } from "../../shared/mod.ts";

const file = { path: "/etc/motd", mode: 0o644, content: "aGVsbG8K" };
const step = { name: "reload", run: "systemctl reload nginx" };
const base = (): Record<string, unknown> => ({ kind: "fleetplan/plan", v: 1, files: [{ ...file }], steps: [{ ...step }] });
const withFile = (f: Record<string, unknown>) => ({ ...base(), files: [{ ...file, ...f }] });
const withStep = (s: Record<string, unknown>) => ({ ...base(), steps: [{ ...step, ...s }] });

/** [what is wrong, the document, the field path its problem must name] */
const INVALID: [string, unknown, string][] = [
  ["not an object", [], "plan"],
  ["wrong kind", { ...base(), kind: "other" }, "plan.kind"],
  ["wrong version", { ...base(), v: 3 }, "plan.v"],
  ["version 2 without a salt", { ...base(), v: 2 }, "plan.salt"],
  ["version 2 with a short salt", { ...base(), v: 2, salt: "ab" }, "plan.salt"],
  ["a salt in version 1", { ...base(), salt: "ab".repeat(32) }, "plan.salt"],
  ["id zero", { ...base(), id: 0 }, "plan.id"],
  ["id unsafe", { ...base(), id: 2 ** 53 }, "plan.id"],
  ["target not a string", { ...base(), target: 7 }, "plan.target"],
  ["unknown top-level field", { ...base(), exec: "x" }, "plan: unknown field"],
  ["files missing", { ...base(), files: undefined }, "plan.files"],
  ["steps not an array", { ...base(), steps: {} }, "plan.steps"],
  [
    "too many files",
    { ...base(), files: Array.from({ length: PLAN_LIMITS.files + 1 }, (_, i) => ({ ...file, path: `/f${i}` })) },
    "plan.files",
  ],
  ["too many steps", { ...base(), steps: Array.from({ length: PLAN_LIMITS.steps + 1 }, () => step) }, "plan.steps"],
  ["file not an object", { ...base(), files: ["/etc/motd"] }, "files[0]"],
  ["relative path", withFile({ path: "etc/motd" }), "files[0].path"],
  ["root as path", withFile({ path: "/" }), "files[0].path"],
  ["path with ..", withFile({ path: "/etc/../root" }), "files[0].path"],
  ["path with //", withFile({ path: "/etc//motd" }), "files[0].path"],
  ["path with trailing slash", withFile({ path: "/etc/" }), "files[0].path"],
  ["path with NUL", withFile({ path: "/etc/mo\0td" }), "files[0].path"],
  ["path too long", withFile({ path: `/${"a".repeat(PLAN_LIMITS.pathBytes)}` }), "files[0].path"],
  ["mode above 0o7777", withFile({ mode: 0o10000 }), "files[0].mode"],
  ["mode negative", withFile({ mode: -1 }), "files[0].mode"],
  ["mode not octal", withFile({ mode: "0999" }), "files[0].mode"],
  ["mode missing", withFile({ mode: undefined }), "files[0].mode"],
  ["owner with a space", withFile({ owner: "root user" }), "files[0].owner"],
  ["group not a string", withFile({ group: 0 }), "files[0].group"],
  ["content not base64", withFile({ content: "hello!" }), "files[0].content"],
  ["content with bad padding", withFile({ content: "aGVsbG8" }), "files[0].content"],
  ["content with three =", withFile({ content: "a===" }), "files[0].content"],
  ["content with = inside", withFile({ content: "aG=sbG8=" }), "files[0].content"],
  ["content URL-safe alphabet", withFile({ content: "aGVs-G8_" }), "files[0].content"],
  ["content with a newline", withFile({ content: "aGVs\nbG8=" }), "files[0].content"],
  ["content with a non-ASCII letter", withFile({ content: "aGVsbGé=" }), "files[0].content"],
  ["unknown file field", withFile({ setuid: true }), "files[0]: unknown field"],
  ["duplicate path", { ...base(), files: [file, file] }, "plan.files: duplicate path"],
  ["step not an object", { ...base(), steps: ["true"] }, "steps[0]"],
  ["step without run", withStep({ run: undefined }), "steps[0].run"],
  ["run with NUL", withStep({ run: "true\0" }), "steps[0].run"],
  ["empty step name", withStep({ name: "" }), "steps[0].name"],
  ["step name with a newline", withStep({ name: "a\nb" }), "steps[0].name"],
  ["step name too long", withStep({ name: "x".repeat(PLAN_LIMITS.nameChars + 1) }), "steps[0].name"],
  ["timeout zero", withStep({ timeout_s: 0 }), "steps[0].timeout_s"],
  ["timeout too long", withStep({ timeout_s: PLAN_LIMITS.timeoutS + 1 }), "steps[0].timeout_s"],
  ["timeout a string", withStep({ timeout_s: "10" }), "steps[0].timeout_s"],
  ["env not an object", withStep({ env: ["A=1"] }), "steps[0].env"],
  ["env reserved name", withStep({ env: { FLEETPLAN_STEP: "x" } }), "steps[0].env"],
  ["env invalid name", withStep({ env: { "A-B": "x" } }), "steps[0].env"],
  ["env value not a string", withStep({ env: { A: 1 } }), "steps[0].env.A"],
  ["unknown step field", withStep({ sudo: true }), "steps[0]: unknown field"],
];

describe("planProblems", () => {
  it("accepts a valid plan, with optional fields", () => {
    assert.deepEqual(planProblems(base()), []);
    const full = {
      ...base(),
      id: 5,
      target: "web-1",
      files: [{ ...file, mode: "0640", owner: "www-data", group: "1000", content: "" }],
      steps: [{ ...step, timeout_s: 30, env: { PORT: "80" } }],
    };
    assert.deepEqual(planProblems(full), []);
  });

  for (const [what, doc, path] of INVALID) {
    it(`reports ${what} at ${path}`, () => {
      const problems = planProblems(doc);
      assert.ok(
        problems.some((p) => p.startsWith(path)),
        `${JSON.stringify(problems.slice(0, 3))} does not name ${path}`,
      );
    });
  }

  it("never echoes file content or env values", () => {
    const problems = planProblems(withFile({ content: "s3cr3t-p4ss!" })).concat(
      planProblems(withStep({ env: { A: 1, B: "s3cr3t" }, sudo: "s3cr3t" })),
    );
    assert.ok(problems.length > 0 && problems.every((p) => !p.includes("s3cr3t")), JSON.stringify(problems));
  });

  // Short content is checked by a scan, long content by Node's decoder: both must be as strict.
  for (const bytes of [6, 30_000]) {
    it(`checks base64 content of ${bytes} bytes strictly`, () => {
      const good = Buffer.alloc(bytes, 0xfb).toString("base64");
      const at = good.length >> 1;
      const spliced = (c: string): string => good.slice(0, at) + c + good.slice(at + c.length);
      assert.deepEqual(planProblems(withFile({ content: good })), []);
      assert.deepEqual(planProblems(withFile({ content: Buffer.alloc(bytes + 1, 7).toString("base64") })), [], "one = of padding");
      assert.deepEqual(planProblems(withFile({ content: Buffer.alloc(bytes + 2, 7).toString("base64") })), [], "two = of padding");
      for (const bad of ["-", "_", "=", "!", " ", "\n", "é", "\u0141"]) {
        assert.ok(
          planProblems(withFile({ content: spliced(bad) })).some((p) => p.startsWith("files[0].content")),
          `${JSON.stringify(bad)} inside`,
        );
      }
      assert.ok(planProblems(withFile({ content: good.slice(1) })).length > 0, "length not a multiple of 4");
    });
  }

  it("accepts multi-MiB base64 content without exhausting the regexp stack", () => {
    assert.deepEqual(planProblems(withFile({ content: Buffer.alloc(12 << 20, 1).toString("base64") })), []);
  });
});

describe("normalizePlan", () => {
  it("turns an octal mode string into a number", () => {
    const plan = normalizePlan(withFile({ mode: "0644" }) as unknown as Plan);
    assert.equal(plan.files[0]!.mode, 0o644);
    assert.equal(normalizePlan(withFile({ mode: "4755" }) as unknown as Plan).files[0]!.mode, 0o4755);
  });

  it("keeps only known fields", () => {
    const plan = normalizePlan({ ...base(), extra: 1, files: [{ ...file, extra: 2 }], steps: [{ ...step, extra: 3 }] } as unknown as Plan);
    assert.deepEqual(plan, base());
  });

  it("makes a script into a one-step plan", () => {
    const plan = planFromScript("echo hi");
    assert.deepEqual(planProblems(plan), []);
    assert.deepEqual(plan.steps, [{ name: "script", run: "echo hi" }]);
  });
});

describe("canonical plan bytes", () => {
  it("do not depend on key order", () => {
    const a: Plan = {
      kind: "fleetplan/plan",
      v: 1,
      files: [{ path: "/a", mode: 0o600, owner: "root", content: "" }],
      steps: [{ name: "s", run: "true", env: { B: "2", A: "1" } }],
    };
    const b = JSON.parse(
      '{"steps":[{"env":{"A":"1","B":"2"},"run":"true","name":"s"}],"files":[{"content":"","owner":"root","mode":384,"path":"/a"}],"v":1,"kind":"fleetplan/plan"}',
    ) as Plan;
    assert.deepEqual(Buffer.from(planBytes(a)), Buffer.from(planBytes(b)));
  });

  it("do not depend on how the mode was written", () => {
    assert.deepEqual(planBytes(withFile({ mode: "0644" }) as unknown as Plan), planBytes(withFile({ mode: 420 }) as unknown as Plan));
  });

  it("are sorted, compact JSON", () => {
    const text = new TextDecoder().decode(planBytes(planFromScript("true")));
    assert.equal(text, '{"files":[],"kind":"fleetplan/plan","steps":[{"name":"script","run":"true"}],"v":1}');
    assert.equal(text, new TextDecoder().decode(canonicalBytes(JSON.parse(text))));
  });
});
