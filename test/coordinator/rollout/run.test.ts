// The rollout loop (coordinator/rollout/run.ts) over a real coordinator database and a scripted
// push: waves in order, the budget and gates pause it, resume retries what failed, a crash
// mid-wave resumes, revert targets exactly the hosts that moved, with their previous plan.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { openCoordinatorDb } from "../../../coordinator/db.ts";
import type { CoordinatorDb, ServerRow } from "../../../coordinator/db.ts";
import type { LoadedPlan } from "../../../coordinator/plan-source.ts";
import type { PushRequest, PushSummary, TargetResult } from "../../../coordinator/push.ts";
import { openRolloutDb } from "../../../coordinator/rollout/db.ts";
import type { RolloutDb } from "../../../coordinator/rollout/db.ts";
import { planVault } from "../../../coordinator/rollout/plan-vault.ts";
import { runRollout } from "../../../coordinator/rollout/run.ts";
import type { RolloutEvent } from "../../../coordinator/rollout/run.ts";
import type { RolloutOptions } from "../../../coordinator/rollout/types.ts";
import { planFromScript } from "../../../shared/plan.ts";
import { adminKeyFromSeed, sodiumReady } from "../../../shared/mod.ts";

await sodiumReady();
const VAULT = planVault(adminKeyFromSeed(new Uint8Array(32).fill(7)));
const T = { timeout: 20_000 };
const HOSTS = ["web-1", "web-2", "web-3", "web-4"];
const plan = (script: string): LoadedPlan => ({ source: `${script}.sh`, plan: planFromScript(`echo ${script}\n`) });
const hashOf = (host: string, p: LoadedPlan) => createHash("sha256").update(host).update(JSON.stringify(p.plan)).digest("hex");
const OPTIONS: RolloutOptions = {
  waveTimeoutMs: 1000,
  expiresInMs: 3_600_000,
  maxFailures: null,
  budgetLimit: 0,
  gates: [],
  prometheus: null,
  maxAgeMs: 60_000,
  revertOnFailure: false,
  viaSsh: false,
  concurrency: 4,
};

describe("runRollout", () => {
  let dir: string;
  let db: CoordinatorDb;
  let rollouts: RolloutDb;
  let events: RolloutEvent[];
  let pushed: string[][];
  /** What the scripted agents do with a plan: host → outcome (default succeeded). */
  let behaviour: (host: string, p: LoadedPlan) => string;
  let gateOpen: boolean;

  // A push as push() records it: ids reserved, delivered envelopes move the expected state, one row per target.
  const fakePush = async (req: PushRequest): Promise<PushSummary> => {
    pushed.push(req.targets.map((t) => t.host));
    const ids = db.reserveIds(
      req.targets.map((t) => t.host),
      new Date(),
    );
    const pushId = db.startPush({ store: "fake", dryRun: false, force: req.force, operator: "test", at: Date.now() });
    const targets = req.targets.map((s): TargetResult => {
      const p = req.plans.get(s.host)!;
      const outcome = behaviour(s.host, p);
      return {
        host: s.host,
        action: "push",
        decision: "new",
        id: ids.get(s.host)!,
        plan_hash: hashOf(s.host, p),
        bytes: 1,
        via: "store",
        outcome,
        reason: outcome === "succeeded" ? null : outcome,
        message: null,
      };
    });
    db.recordBatch(pushId, {
      delivered: targets
        .filter((t) => t.outcome !== "put_failed")
        .map((t) => ({ host: t.host, id: t.id!, planHash: t.plan_hash, at: Date.now() })),
      results: targets.map((t) => ({ host: t.host, id: t.id, planHash: t.plan_hash, outcome: t.outcome, at: Date.now() })),
    });
    return {
      push_id: pushId,
      ok: targets.every((t) => t.outcome === "succeeded"),
      dry_run: false,
      counts: {},
      status_refused: {},
      targets,
    };
  };
  const deps = () => ({
    db,
    rollouts,
    push: fakePush,
    now: Date.now,
    emit: (e: unknown) =>
      void ((e as RolloutEvent).event === "wave" || (e as RolloutEvent).event === "revert" ? events.push(e as RolloutEvent) : null),
    converged: async () => new Set<string>(),
    gate: async (query: string) => ({ query, pass: gateOpen, why: gateOpen ? "open" : `gate ${query}: empty result` }),
  });
  const start = (p: LoadedPlan, ends: number[], options: Partial<RolloutOptions> = {}) => {
    const expected = db.expected();
    return rollouts.create({
      operator: "test",
      at: Date.now(),
      ends,
      options: { ...OPTIONS, ...options },
      targets: HOSTS.map((host) => ({
        host,
        plan: p,
        prevId: expected.get(host)?.id ?? null,
        prevHash: expected.get(host)?.planHash ?? null,
      })),
    });
  };
  const outcomes = (id: number) => rollouts.targets(id).map((t) => `${t.host}:${t.outcome}`);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fleetplan-rollout-run-"));
    db = openCoordinatorDb(join(dir, "fleetplan.db"));
    db.addServers(
      HOSTS.map(
        (host): ServerRow => ({
          host,
          nodeKey: "k",
          nodeKeyId: "k",
          metricsUrl: null,
          ssh: null,
          group: null,
          bootstrapped: true,
          addedAt: 0,
        }),
      ),
    );
    rollouts = openRolloutDb(db.sqlite, VAULT);
    events = [];
    pushed = [];
    behaviour = () => "succeeded";
    gateOpen = true;
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("pushes wave after wave and completes", T, async () => {
    const id = start(plan("v1"), [1, 2, 4]);
    const r = await runRollout(id, deps());
    assert.equal(r.state, "completed");
    assert.deepEqual(pushed, [["web-1"], ["web-2"], ["web-3", "web-4"]]);
    assert.deepEqual(
      events.map((e) => `${e.event}${"wave" in e ? e.wave : ""}:${e.state}`),
      ["wave1:started", "wave1:converged", "wave2:started", "wave2:converged", "wave3:started", "wave3:converged"],
    );
  });

  it("a failure beyond the budget pauses in that wave; resume retries the failed host, then goes on", T, async () => {
    behaviour = (host) => (host === "web-2" ? "failed" : "succeeded");
    const id = start(plan("v1"), [2, 4], { budgetLimit: 0 });
    const paused = await runRollout(id, deps());
    assert.deepEqual([paused.state, paused.wave], ["paused", 0]);
    assert.match(paused.reason!, /web-2 failed/);
    assert.deepEqual(outcomes(id), ["web-1:succeeded", "web-2:failed", "web-3:pending", "web-4:pending"]);
    behaviour = () => "succeeded";
    const done = await runRollout(id, deps());
    assert.equal(done.state, "completed");
    assert.deepEqual(pushed.slice(1), [["web-2"], ["web-3", "web-4"]]);
  });

  it("failures within the budget go on; the budget spans the whole rollout", T, async () => {
    behaviour = (host) => (host === "web-1" || host === "web-4" ? "timeout" : "succeeded");
    const id = start(plan("v1"), [1, 2, 4], { budgetLimit: 1 });
    const r = await runRollout(id, deps());
    assert.deepEqual([r.state, r.wave], ["paused", 2]);
    assert.match(r.reason!, /2 failed \(allowed 1\): web-1 timeout, web-4 timeout/);
  });

  it("a closed gate pauses after a good wave; resume re-evaluates it and pushes nothing again", T, async () => {
    gateOpen = false;
    const id = start(plan("v1"), [1, 4], { gates: ["up == 1"] });
    const r = await runRollout(id, deps());
    assert.deepEqual([r.state, r.wave, pushed], ["paused", 0, [["web-1"]]]);
    assert.match(r.reason!, /empty result/);
    gateOpen = true;
    assert.equal((await runRollout(id, deps())).state, "completed");
    assert.deepEqual(pushed, [["web-1"], ["web-2", "web-3", "web-4"]]);
  });

  it("a coordinator that died mid-wave resumes that wave (state running)", T, async () => {
    const id = start(plan("v1"), [2, 4]);
    rollouts.setState(id, "running", 1, null, Date.now());
    rollouts.recordOutcomes(
      id,
      [{ host: "web-3", id: 5, planHash: hashOf("web-3", plan("v1")), outcome: "pushed", reason: null }],
      Date.now(),
    );
    assert.equal((await runRollout(id, deps())).state, "completed");
    assert.deepEqual(pushed, [["web-1", "web-2", "web-3", "web-4"]]);
  });

  it("revert gives every host that moved its previous plan again under a higher id; others are untouched", T, async () => {
    const v1 = plan("v1");
    assert.equal((await runRollout(start(v1, [4]), deps())).state, "completed");
    const before = db.expected();
    behaviour = (host, p) => (host === "web-2" && p.source === "v2.sh" ? "failed" : "succeeded");
    const id = start(plan("v2"), [2, 4], { revertOnFailure: true });
    const r = await runRollout(id, deps());
    assert.equal(r.state, "reverted");
    assert.deepEqual([r.revert?.hosts, r.revert?.noPrevious, r.revert?.ok], [["web-1", "web-2"], [], true]);
    const now = db.expected();
    for (const t of rollouts.targets(id).slice(0, 2)) {
      assert.ok(t.revertId! > t.id!, t.host);
      assert.deepEqual(
        [now.get(t.host)!.id, now.get(t.host)!.planHash, t.revertOutcome],
        [t.revertId, before.get(t.host)!.planHash, "succeeded"],
      );
    }
    assert.deepEqual([now.get("web-3"), now.get("web-4")], [before.get("web-3"), before.get("web-4")]);
    assert.deepEqual(pushed.at(-1), ["web-1", "web-2"]);
    assert.deepEqual(
      events.filter((e) => e.event === "revert").map((e) => e.state),
      ["started", "finished"],
    );
  });

  it("a host with no known previous plan is listed, never pushed something else", T, async () => {
    behaviour = (host) => (host === "web-1" ? "failed" : "succeeded");
    const id = start(plan("v1"), [1, 4], { revertOnFailure: true });
    const r = await runRollout(id, deps());
    assert.deepEqual([r.state, r.revert?.hosts, r.revert?.noPrevious, r.revert?.ok], ["reverted", [], ["web-1"], false]);
    await assert.rejects(runRollout(id, deps()), /is reverted; nothing to resume/);
  });
});
