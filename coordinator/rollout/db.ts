import type Database from "better-sqlite3";
import { FleetplanError } from "../../shared/errors.ts";
import type { Plan } from "../../shared/types.ts";
import type { LoadedPlan } from "../plan-source.ts";
import type { PlanVault } from "./plan-vault.ts";
import type { Tags } from "./targets.ts";
import type { RevertRecord, Rollout, RolloutOptions, RolloutState, RolloutTarget } from "./types.ts";

// Rollout state, plan bodies and server tags in the coordinator database (tables: schema.ts),
// on the same connection as CoordinatorDb: every change is one transaction, so a coordinator
// that dies mid-rollout leaves a state `rollout resume` continues from.

export interface NewRollout {
  operator: string;
  at: number;
  ends: number[];
  options: RolloutOptions;
  /** In rollout order, with what each host was expected to run before. */
  targets: { host: string; plan: LoadedPlan; prevId: number | null; prevHash: string | null }[];
}

/** One host's result from a push within the rollout. */
export interface TargetOutcome {
  host: string;
  id: number | null;
  planHash: string;
  outcome: string;
  reason: string | null;
}

const toRollout = (r: Record<string, unknown>): Rollout => ({
  id: r.rollout_id as number,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
  operator: r.operator as string,
  state: r.state as RolloutState,
  wave: r.wave as number,
  ends: JSON.parse(r.ends as string) as number[],
  options: JSON.parse(r.options as string) as RolloutOptions,
  reason: r.reason as string | null,
  revert: r.revert === null ? null : (JSON.parse(r.revert as string) as RevertRecord),
});

const toTarget = (r: Record<string, unknown>): RolloutTarget => ({
  host: r.host as string,
  position: r.position as number,
  bodyHash: r.body_hash as string,
  prevId: r.prev_id as number | null,
  prevHash: r.prev_hash as string | null,
  prevBody: r.prev_body as string | null,
  id: r.id as number | null,
  planHash: r.plan_hash as string | null,
  outcome: r.outcome as string,
  reason: r.reason as string | null,
  revertId: r.revert_id as number | null,
  revertOutcome: r.revert_outcome as string | null,
});

/** Rollout and tag queries over an open coordinator database (migrated by openCoordinatorDb). */
export const openRolloutDb = (db: Database.Database, vault: PlanVault | null = null) => {
  const q = {
    putBody: db.prepare("INSERT INTO plan_bodies (body_hash, source, plan) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
    body: db.prepare("SELECT source, plan FROM plan_bodies WHERE body_hash = ?"),
    putKnown: db.prepare(
      `INSERT INTO plan_known (host, plan_hash, body_hash, at) VALUES (?, ?, ?, ?)
       ON CONFLICT (host, plan_hash) DO UPDATE SET body_hash = excluded.body_hash, at = excluded.at`,
    ),
    known: db.prepare("SELECT body_hash FROM plan_known WHERE host = ? AND plan_hash = ?").pluck(),
    create: db.prepare(
      "INSERT INTO rollouts (created_at, updated_at, operator, state, wave, ends, options) VALUES (?, ?, ?, 'running', 0, ?, ?)",
    ),
    addTarget: db.prepare(
      `INSERT INTO rollout_targets (rollout_id, host, position, body_hash, prev_id, prev_hash, prev_body)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    get: db.prepare("SELECT * FROM rollouts WHERE rollout_id = ?"),
    list: db.prepare("SELECT * FROM rollouts ORDER BY rollout_id DESC LIMIT ?"),
    targets: db.prepare("SELECT * FROM rollout_targets WHERE rollout_id = ? ORDER BY position"),
    outcome: db.prepare("UPDATE rollout_targets SET id = ?, plan_hash = ?, outcome = ?, reason = ? WHERE rollout_id = ? AND host = ?"),
    revertOutcome: db.prepare("UPDATE rollout_targets SET revert_id = ?, revert_outcome = ? WHERE rollout_id = ? AND host = ?"),
    state: db.prepare("UPDATE rollouts SET state = ?, wave = ?, reason = ?, updated_at = ? WHERE rollout_id = ?"),
    revert: db.prepare("UPDATE rollouts SET state = 'reverted', revert = ?, updated_at = ? WHERE rollout_id = ?"),
    tags: db.prepare("SELECT host, key, value FROM server_tags ORDER BY host, key"),
    putTag: db.prepare("INSERT INTO server_tags (host, key, value) VALUES (?, ?, ?)"),
    dropTags: db.prepare("DELETE FROM server_tags WHERE host = ?"),
  };

  const needVault = (): PlanVault => {
    if (vault === null)
      throw new FleetplanError("invalid_argument", "plans in the coordinator database are sealed to the admin key: give --admin-key");
    return vault;
  };

  /** Store a plan's normalised JSON once, sealed; returns its name (a keyed hash). */
  const putBody = (plan: LoadedPlan): string => {
    const json = JSON.stringify(plan.plan);
    const name = needVault().nameOf(json);
    if (q.body.get(name) === undefined) q.putBody.run(name, plan.source, needVault().seal(json));
    return name;
  };

  const loadBody = (name: string): LoadedPlan => {
    const row = q.body.get(name) as { source: string; plan: string } | undefined;
    if (row === undefined) throw new FleetplanError("ledger_error", `plan body ${name} missing from the coordinator database`);
    return { source: row.source, plan: JSON.parse(needVault().open(row.plan, name)) as Plan };
  };

  const get = (id: number): Rollout => {
    const row = q.get.get(id) as Record<string, unknown> | undefined;
    if (row === undefined) throw new FleetplanError("not_found", `no rollout ${id}; see \`fleetplan rollout list\``);
    return toRollout(row);
  };

  const create = db.transaction((r: NewRollout): number => {
    const id = Number(q.create.run(r.at, r.at, r.operator, JSON.stringify(r.ends), JSON.stringify(r.options)).lastInsertRowid);
    r.targets.forEach((t, position) => {
      const prevBody = t.prevHash === null ? null : ((q.known.get(t.host, t.prevHash) as string | undefined) ?? null);
      q.addTarget.run(id, t.host, position, putBody(t.plan), t.prevId, t.prevHash, prevBody);
    });
    return id;
  });

  const recordOutcomes = db.transaction((id: number, rows: TargetOutcome[], at: number) => {
    const bodies = new Map((q.targets.all(id) as Record<string, unknown>[]).map((t) => [t.host as string, t.body_hash as string]));
    for (const r of rows) {
      q.outcome.run(r.id, r.planHash, r.outcome, r.reason, id, r.host);
      // Remembered for a later revert: which plan this host's hash stands for.
      if (r.id !== null && r.outcome !== "skipped") q.putKnown.run(r.host, r.planHash, bodies.get(r.host)!, at);
    }
  });

  const rememberPlans = db.transaction((rows: { host: string; planHash: string; plan: LoadedPlan }[], at: number) => {
    const bodies = new Map<LoadedPlan, string>();
    for (const r of rows) {
      const body = bodies.get(r.plan) ?? bodies.set(r.plan, putBody(r.plan)).get(r.plan)!;
      q.putKnown.run(r.host, r.planHash, body, at);
    }
  });

  const recordRevert = db.transaction((id: number, rows: { host: string; id: number | null; outcome: string }[], record: RevertRecord) => {
    for (const r of rows) q.revertOutcome.run(r.id, r.outcome, id, r.host);
    q.revert.run(JSON.stringify(record), record.at, id);
  });

  const setTags = db.transaction((host: string, tags: Tags) => {
    q.dropTags.run(host);
    for (const [k, v] of Object.entries(tags)) q.putTag.run(host, k, v);
  });

  return {
    create: (r: NewRollout): number => create.immediate(r),
    get,
    list: (limit = 50): Rollout[] => (q.list.all(limit) as Record<string, unknown>[]).map(toRollout),
    targets: (id: number): RolloutTarget[] => (q.targets.all(id) as Record<string, unknown>[]).map(toTarget),
    /** Each target's plan, from the stored bodies: resume needs no plan files. */
    plans: (id: number): Map<string, LoadedPlan> => {
      const cache = new Map<string, LoadedPlan>();
      return new Map(
        (q.targets.all(id) as Record<string, unknown>[]).map((t) => {
          const body = t.body_hash as string;
          return [t.host as string, cache.get(body) ?? cache.set(body, loadBody(body)).get(body)!];
        }),
      );
    },
    loadBody,
    recordOutcomes: (id: number, rows: TargetOutcome[], at: number): void => recordOutcomes.immediate(id, rows, at),
    /** Remember which plan a host's bound hash stands for (push records what it delivered). */
    rememberPlans: (rows: { host: string; planHash: string; plan: LoadedPlan }[], at: number): void => rememberPlans.immediate(rows, at),
    setState: (id: number, state: RolloutState, wave: number, reason: string | null, at: number): void =>
      void q.state.run(state, wave, reason, at, id),
    recordRevert: (id: number, rows: { host: string; id: number | null; outcome: string }[], record: RevertRecord): void =>
      recordRevert.immediate(id, rows, record),
    /** Every host's tags. */
    tags: (): Map<string, Tags> => {
      const out = new Map<string, Tags>();
      for (const r of q.tags.all() as { host: string; key: string; value: string }[])
        out.set(r.host, { ...out.get(r.host), [r.key]: r.value });
      return out;
    },
    setTags: (host: string, tags: Tags): void => setTags.immediate(host, tags),
  };
};

export type RolloutDb = ReturnType<typeof openRolloutDb>;
