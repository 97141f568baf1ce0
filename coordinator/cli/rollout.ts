import { userInfo } from "node:os";
import type { CliIo } from "../../shared/cli.ts";
import { ansiOn, ExitCode, formatTable } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadAdminKey } from "../../shared/key-files.ts";
import { parseTrust } from "../../shared/keys.ts";
import type { Logger } from "../../shared/log.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AdminKeyPair } from "../../shared/types.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import type { LoadedPlan } from "../plan-source.ts";
import { createProgress, outcomeDetail } from "../progress.ts";
import { push } from "../push.ts";
import type { PushEvent, PushRequest } from "../push.ts";
import { budgetLimit } from "../rollout/budget.ts";
import { openRolloutDb } from "../rollout/db.ts";
import { planVault } from "../rollout/plan-vault.ts";
import type { RolloutDb } from "../rollout/db.ts";
import { evaluateGate } from "../rollout/gate.ts";
import { takeLease } from "../rollout/lease.ts";
import { checkStagedResume } from "../rollout/staged-resume.ts";
import { revertRollout, runRollout } from "../rollout/run.ts";
import type { RolloutDeps, RolloutEvent } from "../rollout/run.ts";
import type { Rollout, RolloutOptions } from "../rollout/types.ts";
import { batchEnds, orderTargets, parseAmount, parseWaves, waveEnds } from "../rollout/waves.ts";
import { openStagingDb } from "../staging-db.ts";
import { commonPushDeps, convergedStates, lazyStore } from "./push-deps.ts";

// `push --waves|--batch` and `rollout list|show|resume|abort`: the rollout's I/O edge. Decisions
// live in coordinator/rollout/ (pure), the run loop in rollout/run.ts.

/** Exit code of a rollout that paused (budget, gate, interrupt) or was reverted: waiting for the operator. */
export const PAUSED = 5;

export interface RolloutFlags {
  waves?: string;
  batch?: string;
  canary?: string;
  "max-failures"?: string;
  "wave-timeout"?: string;
  "gate-query"?: string[];
  "revert-on-failure"?: boolean;
  /** `rollout abort ID --no-revert`: end a --revert-on-failure rollout without reverting. */
  "no-revert"?: boolean;
  timeout?: string;
  expires?: string;
  concurrency?: string;
  via?: string;
  prometheus?: string;
  "max-age"?: string;
  "dry-run"?: boolean;
  force?: boolean;
  "ssh-config"?: string;
  "remote-agent"?: string;
}

/** Rollout-only flags: given without --waves/--batch they would be ignored, so they are refused. */
export const ROLLOUT_ONLY = ["canary", "max-failures", "wave-timeout", "gate-query", "revert-on-failure"] as const;

/** Does this push run as a rollout? Refuses rollout flags without waves, and waves with --dry-run/--force. */
export const isRollout = (flags: RolloutFlags): boolean => {
  const waved = flags.waves !== undefined || flags.batch !== undefined;
  if (!waved) {
    const stray = ROLLOUT_ONLY.filter((f) => flags[f] !== undefined);
    if (stray.length > 0) {
      throw new FleetplanError(
        "invalid_argument",
        `${stray.map((f) => `--${f}`).join(", ")} only apply to a rollout: add --waves 1,10%,100% or --batch N`,
      );
    }
    return false;
  }
  if (flags.waves !== undefined && flags.batch !== undefined) {
    throw new FleetplanError("invalid_argument", "give one of --waves and --batch, not both");
  }
  if (flags["dry-run"] || flags.force) {
    throw new FleetplanError(
      "invalid_argument",
      "--dry-run and --force do not apply to a rollout (waves always wait and skip converged hosts)",
    );
  }
  if (flags["gate-query"] !== undefined && flags.prometheus === undefined) {
    throw new FleetplanError("invalid_argument", "--gate-query needs --prometheus URL (where the gates are evaluated)");
  }
  return true;
};

/** The rollout's fixed options from the push flags, each checked and named on error. */
const rolloutOptions = (flags: RolloutFlags, total: number): RolloutOptions => {
  const concurrency = Number(flags.concurrency ?? 256);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new FleetplanError("invalid_argument", `--concurrency: ${flags.concurrency} must be a positive integer`);
  }
  const maxFailures = flags["max-failures"] === undefined ? null : parseAmount("--max-failures", flags["max-failures"], 0);
  const gates = flags["gate-query"] ?? [];
  if (gates.some((g) => g.trim() === "")) {
    throw new FleetplanError("invalid_argument", "--gate-query: empty query; give PromQL such as 'sum(up{job=\"web\"}) > 0'");
  }
  return {
    waveTimeoutMs: parseDuration(flags["wave-timeout"] ?? flags.timeout ?? "10m", flags["wave-timeout"] ? "--wave-timeout" : "--timeout"),
    expiresInMs: parseDuration(flags.expires ?? "24h", "--expires"),
    maxFailures,
    budgetLimit: budgetLimit(maxFailures, total),
    gates,
    prometheus: flags.prometheus ?? null,
    maxAgeMs: parseDuration(flags["max-age"] ?? "30m", "--max-age"),
    revertOnFailure: !!flags["revert-on-failure"],
    viaSsh: flags.via === "ssh",
    concurrency,
  };
};

/** The rollout tables of the open coordinator database. */
/** The rollout tables; plans (resume, revert) are sealed to the first signer's key. */
export const rolloutsOf = (db: CoordinatorDb, signers: AdminKeyPair[] = []): RolloutDb =>
  openRolloutDb(db.sqlite, signers[0] ? planVault(signers[0]) : null);

const describeRollout = (r: Rollout): string =>
  r.state === "completed"
    ? `rollout ${r.id} completed: ${r.ends.length} wave(s)`
    : `rollout ${r.id} ${r.state} at wave ${Math.min(r.wave + 1, r.ends.length)}/${r.ends.length}${r.reason ? `: ${r.reason}` : ""}`;

/** Print the run's events: one JSON object per line, or wave lines and a progress display per wave. */
const createOutput = (json: boolean, io: CliIo) => {
  let progress: ReturnType<typeof createProgress> | null = null;
  return (e: RolloutEvent | PushEvent): void => {
    if (json) {
      io.stdout(`${JSON.stringify(e)}\n`);
      return;
    }
    if (e.event === "wave") {
      const budget = e.budget ? `, ${e.budget.used} failed (budget ${e.budget.limit})` : "";
      if (e.state !== "started") {
        progress?.end();
        progress = null;
      }
      const hosts = `${e.hosts.slice(0, 8).join(",")}${e.hosts.length > 8 ? ",…" : ""}`;
      const label = `wave ${e.wave}/${e.waves}`;
      io.stderr(`${label} ${e.state}: ${e.hosts.length} host(s) ${hosts}${budget}${e.reason ? ` — ${e.reason}` : ""}\n`);
      if (e.state === "started") progress = createProgress(io, e.hosts.length, ansiOn(process.stderr), Date.now(), label);
    } else if (e.event === "revert") {
      const counts = e.counts
        ? `: ${Object.entries(e.counts)
            .map(([k, v]) => `${v} ${k}`)
            .join(", ")}`
        : "";
      const none = e.no_previous?.length ? ` (no previous plan known for ${e.no_previous.join(", ")}: left as they are)` : "";
      io.stderr(`revert ${e.state}: ${e.hosts.length} host(s) back to their previous plan${counts}${none}\n`);
    } else progress?.onEvent(e);
  };
};

/**
 * Run (or resume) rollout `id` with the store, keys and SSH of this coordinator; prints the result, returns the exit code.
 * `sealed`: an approved staged rollout (cli/approve.ts) delivers these co-signed envelopes and needs no plans.
 */
export const drive = async (
  id: number,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  logger: Logger,
  io: CliIo,
  flags: Pick<RolloutFlags, "ssh-config" | "remote-agent">,
  sealed?: PushRequest["sealed"],
  action: (id: number, deps: RolloutDeps) => Promise<unknown> = runRollout,
): Promise<number> => {
  await sodiumReady();
  const signers = config.adminKeys.map(loadAdminKey);
  const rollouts = sealed ? { ...rolloutsOf(db), plans: () => new Map<string, LoadedPlan>() } : rolloutsOf(db, signers);
  const options = rollouts.get(id).options;
  // One driver at a time: refused (rollout_busy) while another live process drives this rollout.
  const release = takeLease(db.sqlite, id);
  const store = lazyStore(config, logger);
  const openOnce = store.open;
  const emit = createOutput(config.json, io);
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once("SIGINT", onSigint);
  const statesOf = convergedStates(db, options.maxAgeMs, options.prometheus);
  const converged = async (servers: ServerRow[]) => new Set((await statesOf(servers)).converged);
  try {
    await action(id, {
      db,
      rollouts,
      emit,
      converged,
      now: Date.now,
      waitInterrupt: () => interrupt.signal,
      gate: (query) => evaluateGate(options.prometheus!, query),
      push: async (req) => {
        const summary = await push(sealed ? { ...req, sealed } : req, {
          db,
          signers,
          emit,
          ...commonPushDeps(config, logger, flags),
          store: openOnce,
          converged: statesOf,
        });
        const known = summary.targets
          .filter((t) => t.id !== null)
          .map((t) => ({ host: t.host, planHash: t.plan_hash, plan: req.plans.get(t.host)! }));
        if (!sealed) rollouts.rememberPlans(known, Date.now());
        return summary;
      },
    });
    const result = rollouts.get(id);
    printRollout(result, rollouts, config.json, io);
    if (action === revertRollout) return result.revert?.ok ? 0 : ExitCode.Failed;
    return result.state === "completed" ? 0 : PAUSED;
  } finally {
    process.removeListener("SIGINT", onSigint);
    await store.close();
    release();
  }
};

/**
 * `rollout resume ID`: a rollout staged with `push --waves --stage` resumes only once approved, and only with the
 * threshold of admin keys recorded with it (the stager's first: its plans are sealed to that key); others as they are.
 */
const resumeConfig = async (id: number, config: CoordinatorConfig, db: CoordinatorDb): Promise<CoordinatorConfig> => {
  const change = openStagingDb(db.sqlite)
    .list(true)
    .find((c) => c.rolloutId === id);
  if (change === undefined) return config;
  await sodiumReady();
  const keys = config.adminKeys.map(loadAdminKey);
  const ordered = checkStagedResume(id, change, parseTrust(change.trust, `trust set of rollout ${id}`), keys);
  return { ...config, adminKeys: ordered.map((k) => config.adminKeys[keys.indexOf(k)]!) };
};

/** Print a rollout's record and per-host outcomes (`rollout show`, and at the end of a run). */
const printRollout = (r: Rollout, rollouts: RolloutDb, json: boolean, io: CliIo): void => {
  const targets = rollouts.targets(r.id);
  if (json) {
    io.stdout(`${JSON.stringify({ event: "rollout", ...r, targets })}\n`);
    return;
  }
  const waveOf = (position: number) => r.ends.findIndex((end) => position < end) + 1;
  io.stdout(
    formatTable(
      ["wave", "host", "outcome", "id", "reason", "reverted to", "revert outcome"],
      targets.map((t) => [waveOf(t.position), t.host, t.outcome, t.id, t.reason, t.revertId, t.revertOutcome]),
    ),
  );
  io.stdout(`${describeRollout(r)}\n`);
  if (r.state === "paused") io.stdout(`fix the cause, then \`fleetplan rollout resume ${r.id}\`, or \`fleetplan rollout abort ${r.id}\`\n`);
  if (r.revert) {
    const counts =
      Object.entries(r.revert.counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(", ") || null;
    io.stdout(
      `reverted ${r.revert.hosts.length} host(s)${outcomeDetail({ reason: r.revert.ok ? null : "revert incomplete", message: counts })}\n`,
    );
  }
};

/** `push --waves|--batch`: record the rollout (targets in order, waves, plans, what each host had before), then run it. */
export const startRollout = async (
  flags: RolloutFlags,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  logger: Logger,
  io: CliIo,
  targets: ServerRow[],
  plans: Map<string, LoadedPlan>,
): Promise<number> => drive(await createRollout(flags, config, db, io, targets, plans), config, db, logger, io, flags);

/** Record a rollout and return its id: run at once by startRollout, or once approved for `push --waves --stage`. */
export const createRollout = async (
  flags: RolloutFlags,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  io: CliIo,
  targets: ServerRow[],
  plans: Map<string, LoadedPlan>,
): Promise<number> => {
  const order = orderTargets(
    targets.map((t) => t.host),
    flags.canary
      ?.split(",")
      .map((c) => c.trim())
      .filter(Boolean),
  );
  const ends =
    flags.waves !== undefined
      ? waveEnds(parseWaves(flags.waves), order.length)
      : batchEnds(parseAmount("--batch", flags.batch!), order.length);
  const options = rolloutOptions(flags, order.length);
  const expected = db.expected();
  await sodiumReady();
  const id = rolloutsOf(db, config.adminKeys.map(loadAdminKey)).create({
    operator: userInfo().username,
    at: Date.now(),
    ends,
    options,
    targets: order.map((host) => {
      const before = expected.get(host);
      return { host, plan: plans.get(host)!, prevId: before?.id ?? null, prevHash: before?.planHash ?? null };
    }),
  });
  const sizes = ends.map((e, i) => e - (ends[i - 1] ?? 0)).join(", ");
  if (!config.json) io.stderr(`rollout ${id}: ${order.length} target(s) in ${ends.length} wave(s) of ${sizes}\n`);
  return id;
};

/** `rollout list|show ID|resume ID|abort ID`. */
export const rolloutCommand = async (
  args: string[],
  flags: RolloutFlags,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  logger: Logger,
  io: CliIo,
): Promise<number> => {
  const [sub, arg] = args;
  const rollouts = rolloutsOf(db);
  const idOf = (): number => {
    if (arg === undefined || !/^\d+$/.test(arg)) {
      throw new FleetplanError(
        "invalid_argument",
        `rollout ${sub} needs a rollout id (see \`fleetplan rollout list\`), got ${JSON.stringify(arg ?? "")}`,
      );
    }
    return rollouts.get(Number(arg)).id;
  };
  switch (sub) {
    case "list": {
      const rows = rollouts.list();
      if (config.json) io.stdout(`${JSON.stringify(rows)}\n`);
      else
        io.stdout(
          formatTable(
            ["id", "state", "wave", "targets", "started", "operator", "reason"],
            rows.map((r) => [
              r.id,
              r.state,
              `${Math.min(r.wave + 1, r.ends.length)}/${r.ends.length}`,
              r.ends.at(-1) ?? 0,
              new Date(r.createdAt).toISOString(),
              r.operator,
              r.reason,
            ]),
          ),
        );
      return 0;
    }
    case "show":
      printRollout(rollouts.get(idOf()), rollouts, config.json, io);
      return 0;
    case "resume": {
      const id = idOf();
      return drive(id, await resumeConfig(id, config, db), db, logger, io, flags);
    }
    default: {
      // "abort": main.ts refuses any other subcommand
      const id = idOf();
      // Not while another process drives it; a driver that is gone (killed mid-wave) is taken over.
      const release = takeLease(db.sqlite, id);
      try {
        const r = rollouts.get(id);
        if (r.state !== "running" && r.state !== "paused") {
          throw new FleetplanError("conflict", `rollout ${r.id} is ${r.state}; only a running or paused rollout can be aborted`);
        }
        rollouts.setState(r.id, "aborted", r.wave, r.reason ?? "aborted by the operator", Date.now());
        openStagingDb(db.sqlite).discardRollout(r.id, Date.now());
        // A rollout that reverts on failure reverts when aborted too (a paused one already did), unless --no-revert.
        if (r.options.revertOnFailure && r.revert === null && !flags["no-revert"]) {
          if (!config.json)
            io.stderr(`rollout ${r.id} aborted at wave ${r.wave + 1}/${r.ends.length}; reverting (--no-revert keeps what hosts have)\n`);
          return await drive(r.id, config, db, logger, io, flags, undefined, revertRollout);
        }
        io.stdout(
          config.json
            ? `${JSON.stringify({ ok: true, rollout: r.id, state: "aborted" })}\n`
            : `rollout ${r.id} aborted at wave ${r.wave + 1}/${r.ends.length}; hosts keep what they have\n`,
        );
        return 0;
      } finally {
        release();
      }
    }
  }
};
