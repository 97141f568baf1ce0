// Failure details without servers: the status fields (old records still parse), the agent's
// failure codes, the late outcome appended to history, the progress redraw timer and the early
// stop of a wait for an agent that is down.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { failureFields } from "../../agent/report-output.ts";
import type { HistoryRow } from "../../coordinator/db.ts";
import { lateOutcome } from "../../coordinator/late-outcomes.ts";
import { createProgress } from "../../coordinator/progress.ts";
import { failureOf } from "../../coordinator/status-evidence.ts";
import { waitForOutcomes } from "../../coordinator/wait.ts";
import { checkStatus } from "../../shared/status.ts";
import type { PlanStore } from "../../shared/types.ts";
import { agentStatus } from "../helpers/status.ts";

const base = agentStatus({
  state: "failed",
  id: 7,
  plan_hash: "ab".repeat(32),
  step_index: 1,
  steps: 3,
  boot_time: 1,
  result: "failed",
  version: "1.0.0",
});
const step = (index: number, exitCode: number | null, extra: { timedOut?: boolean; signal?: string | null } = {}) => ({
  index,
  name: `s${index}`,
  exitCode,
  signal: extra.signal ?? null,
  timedOut: extra.timedOut ?? false,
  durationMs: 1,
  startedAt: 0,
});

describe("failure details", { timeout: 30_000 }, () => {
  it("status: a record without the new fields still parses; with them too; mistyped ones are refused", () => {
    assert.ok(checkStatus(base));
    assert.ok(checkStatus({ ...base, failure_reason: "step_failed", exit_code: 3, failed_step: 1 }));
    assert.ok(checkStatus({ ...base, failure_reason: null, exit_code: null, failed_step: null }));
    assert.equal(checkStatus({ ...base, exit_code: "3" }), null);
    assert.equal(checkStatus({ ...base, failure_reason: 1 }), null);
  });

  it("agent: a stable reason, the exit code and index of the failing step", () => {
    const ok = { result: "succeeded" as const, steps: [step(0, 0)] };
    assert.equal(failureFields(ok), null);
    assert.deepEqual(failureFields({ result: "failed", steps: [step(0, 0), step(1, 3)] }), {
      failure_reason: "step_failed",
      exit_code: 3,
      failed_step: 1,
    });
    assert.deepEqual(failureFields({ result: "failed", steps: [step(0, null, { timedOut: true, signal: "SIGTERM" })] }), {
      failure_reason: "step_timeout",
      exit_code: null,
      failed_step: 0,
    });
    assert.deepEqual(failureFields({ result: "failed", steps: [step(0, null, { signal: "SIGKILL" })] }), {
      failure_reason: "step_killed",
      exit_code: null,
      failed_step: 0,
    });
    assert.deepEqual(failureFields({ result: "failed", reason: "file_outside_roots", steps: [] }), {
      failure_reason: "file_outside_roots",
      exit_code: null,
      failed_step: null,
    });
  });

  it("coordinator: failureOf names the reason, the step and the exit code", () => {
    assert.deepEqual(failureOf({ ...base, failure_reason: "step_failed", exit_code: 3, failed_step: 1 }), {
      reason: "step_failed",
      message: "step 2/3 exit code 3 (fleetplan logs web-1 --id 7)",
    });
    // An older agent's record: the result code is all there is.
    assert.equal(failureOf(base)?.reason, "failed");
    assert.equal(failureOf({ ...base, state: "succeeded" }), null);
  });

  it("history: a host that timed out and reported later gets its outcome appended, once", () => {
    const last: HistoryRow = {
      pushId: 4,
      at: 1,
      host: "web-1",
      id: 7,
      planHash: "ab".repeat(32),
      outcome: "timeout",
      reason: "timeout",
      message: null,
      operator: "me",
      store: "nats",
      dryRun: false,
    };
    const failed = { ...base, failure_reason: "unknown_owner", exit_code: null, failed_step: null };
    const row = lateOutcome(last, failed, 99);
    assert.deepEqual([row?.outcome, row?.reason, row?.id, row?.at], ["failed", "unknown_owner", 7, 99]);
    assert.match(row?.message ?? "", /^reported after the wait ended \(timeout\): before any step/);
    const applied = { ...base, state: "succeeded" as const, applied_id: 7, result: "succeeded" };
    assert.equal(lateOutcome(last, applied, 99)?.outcome, "succeeded");
    assert.equal(lateOutcome({ ...last, outcome: "failed" }, applied, 99), null, "settled rows stay");
    assert.equal(lateOutcome(last, { ...base, state: "running", id: 7 }, 99), null, "still running");
    assert.equal(lateOutcome(last, { ...base, state: "failed", id: 6 }, 99), null, "an older id");
  });

  it("progress: a TTY line is redrawn on a timer while no event arrives", async () => {
    const lines: string[] = [];
    const io = { stdout: () => {}, stderr: (s: string) => void lines.push(s) };
    const progress = createProgress(io, 2, true, Date.now(), "wave 1/2", 50);
    // Three redraws with no event at all (polled: a loaded machine delays timers).
    for (const deadline = Date.now() + 5_000; lines.length < 3 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    const during = lines.length;
    progress.end();
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(during >= 3, `${during} redraws in 5 s`);
    assert.equal(lines.length, during + 2, "end() draws once more, then a newline, and the timer stops");
    assert.match(lines[0]!, /^\r\x1b\[2Kwave 1\/2 \[/);
    const plain: string[] = [];
    createProgress({ stdout: () => {}, stderr: (s: string) => void plain.push(s) }, 2, false, Date.now(), "", 50).end();
    assert.deepEqual(plain, [], "no timer and no redraw off a TTY");
  });

  it("wait: an agent whose metrics stay unreachable ends agent_down long before --timeout", async () => {
    const store = {
      kind: "fake",
      watchStatuses: (_: unknown, signal: AbortSignal) =>
        new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true })),
    } as unknown as PlanStore;
    const pushed = new Map([
      ["dead-1", { id: 7, putAt: 0 }],
      ["alive-1", { id: 7, putAt: 0 }],
    ]);
    const started = Date.now();
    const result = waitForOutcomes(
      store,
      pushed,
      () => ({ ok: false, reason: "malformed", claimedHost: null }),
      1_500,
      () => {},
      {
        probe: async (host) => host === "alive-1",
        probeEveryMs: 50,
        downAfter: 3,
      },
    );
    const { outcomes } = await result;
    assert.deepEqual(outcomes.get("dead-1")?.outcome, "agent_down");
    assert.equal(outcomes.get("dead-1")?.reason, "agent_down");
    assert.equal(outcomes.has("alive-1"), false, "an agent that answers is waited for until the timeout");
    const all = new Map([["dead-1", { id: 7, putAt: 0 }]]);
    const early = Date.now();
    const alone = await waitForOutcomes(
      store,
      all,
      () => ({ ok: false, reason: "malformed", claimedHost: null }),
      60_000,
      () => {},
      {
        probe: async () => false,
        probeEveryMs: 50,
        downAfter: 3,
      },
    );
    assert.equal(alone.outcomes.get("dead-1")?.outcome, "agent_down");
    assert.ok(Date.now() - early < 2_000, `took ${Date.now() - early} ms with a 60 s timeout`);
    assert.ok(Date.now() - started < 10_000);
  });

  it("wait: an agent that keeps reporting is not probed; one silent for a probe interval is", async () => {
    let since = 0;
    const store = {
      kind: "fake",
      watchStatuses: (onRecord: (r: { key: string; value: Uint8Array }) => void, signal: AbortSignal) =>
        new Promise<void>((resolve) => {
          const timer = setInterval(() => onRecord({ key: "busy-1", value: new Uint8Array() }), 20);
          signal.addEventListener("abort", () => resolve(clearInterval(timer)), { once: true });
        }),
    } as unknown as PlanStore;
    const running = () => agentStatus({ host: "busy-1", state: "running", id: 7, since: ++since });
    const probed = new Map<string, number>();
    const { outcomes } = await waitForOutcomes(
      store,
      new Map([
        ["busy-1", { id: 7, putAt: 0 }],
        ["quiet-1", { id: 7, putAt: 0 }],
      ]),
      () => ({ ok: true, status: running() }),
      2_000,
      () => {},
      {
        probe: async (host) => {
          probed.set(host, (probed.get(host) ?? 0) + 1);
          return true;
        },
        probeEveryMs: 300,
        downAfter: 3,
      },
    );
    assert.equal(outcomes.size, 0, "both are waited for until the timeout");
    assert.equal(probed.get("busy-1"), undefined, "reported every 20 ms: never probed");
    assert.ok((probed.get("quiet-1") ?? 0) >= 2, `the silent one probed ${probed.get("quiet-1")} times`);
  });
});
