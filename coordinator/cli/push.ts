import type { CliIo } from "../../shared/cli.ts";
import { ansiOn, compareHosts, ExitCode, formatTable } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { withTimeout } from "../../shared/retry.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadAdminKey } from "../../shared/key-files.ts";
import type { Logger } from "../../shared/log.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { PlanStore } from "../../shared/types.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import { loadPlanDir, loadPlanFile, strayPlanFiles } from "../plan-source.ts";
import { createProgress, outcomeDetail } from "../progress.ts";
import { createStatusVerifier, identityKeyOf, noIdentityWarning } from "../status-evidence.ts";
import { push } from "../push.ts";
import { selectTargets } from "../rollout/targets.ts";
import type { TargetFlags } from "../rollout/targets.ts";
import type { PushEvent, PushSummary } from "../push.ts";
import { commonPushDeps, convergedStates, lazyStore } from "./push-deps.ts";
import { isRollout, rolloutsOf, startRollout } from "./rollout.ts";
import type { RolloutFlags } from "./rollout.ts";

export interface PushFlags extends RolloutFlags {
  where?: string[];
  plan?: string;
  plans?: string;
  servers?: string;
  group?: string;
  all?: boolean;
  wait?: boolean;
  "ssh-config"?: string;
  "remote-agent"?: string;
  /** Two-person rule: seal and sign, keep unpublished until `approve` (cli/staged.ts); checked against --trust FILE. */
  stage?: boolean;
  trust?: string;
}

const UNREACHABLE = new Set(["store_unavailable", "store_timeout", "ssh_failed", "agent_missing", "agent_down"]);
/** 128 + SIGINT, as a shell reports a command stopped with Ctrl-C. */
const INTERRUPTED = 130;
/** Puts in flight by default: enough to keep the store busy while workers seal (bench/push.ts); SSH stays at SSH_IN_FLIGHT. */
const DEFAULT_CONCURRENCY = 256;
/** Shorter than this and every envelope is expired before an agent can verify it. */
const MIN_EXPIRES_MS = 60_000;

/** The servers a command applies to: --servers names and globs | --group G,H | --all (at most one), narrowed by --where k=v (coordinator/rollout/targets.ts). */
export const selectServers = (db: CoordinatorDb, flags: TargetFlags, required: boolean): ServerRow[] => {
  const tags = rolloutsOf(db).tags();
  return selectTargets(db.servers(), (host) => tags.get(host) ?? {}, flags, required);
};

/**
 * A day-0 server whose agent now reports through the store is bootstrapped: from here on
 * it gets its plans from the store, not over SSH. Only a record signed by that host's own identity
 * key counts (anyone with store access can write one under its key). Store trouble leaves the
 * flags alone. A dry run only reads: the targets show the route a push would take, the database is not written.
 */
const markBootstrapped = async (
  db: CoordinatorDb,
  targets: ServerRow[],
  store: () => Promise<PlanStore>,
  logger: Logger,
  dryRun: boolean,
): Promise<void> => {
  const pending = targets.filter((t) => !t.bootstrapped);
  if (pending.length === 0) return;
  try {
    // Bounded: an unreachable store must not hold up an SSH push for long.
    const records = await withTimeout(
      (async () => (await store()).statuses())(),
      5_000,
      () => new Error("store did not answer within 5 s"),
    );
    const verify = createStatusVerifier(pending);
    const reporting = new Set<string>();
    for (const record of records.filter((r) => pending.some((p) => p.host === r.key))) {
      const checked = verify(record);
      if (checked.ok) reporting.add(record.key);
      else
        logger.warn("status_refused", {
          host: record.key,
          reason: checked.reason,
          claimed_host: checked.claimedHost,
          detail: "not bootstrapped",
        });
    }
    for (const t of pending.filter((p) => reporting.has(p.host))) {
      if (!dryRun) db.setBootstrapped(t.host, true);
      t.bootstrapped = true;
      logger.info(dryRun ? "server_would_bootstrap" : "server_bootstrapped", { host: t.host });
    }
  } catch (error) {
    logger.warn("bootstrap_check_failed", { error: (error as Error).message });
  }
};

/**
 * Exit code of a finished push: 0 all good; 3 every target rejected by its agent; 4 no target
 * reachable (store, host or agent); else 1.
 */
const exitCodeOf = (summary: PushSummary): number => {
  if (summary.ok) return ExitCode.Ok;
  if (summary.targets.every((t) => t.outcome === "rejected")) return ExitCode.Rejected;
  return summary.targets.every((t) => UNREACHABLE.has(t.reason ?? "")) ? ExitCode.Unavailable : ExitCode.Failed;
};

/**
 * `push`: seal and deliver plans, print events or progress, exit 0 only if all went well.
 * `args` are the positionals after `push`; it takes none. Ctrl-C during --wait stops waiting,
 * records what is known and exits 130.
 */
export const pushCommand = async (
  flags: PushFlags,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  logger: Logger,
  io: CliIo,
  args: string[] = [],
): Promise<number> => {
  if (args.length > 0)
    throw new FleetplanError("invalid_argument", `push takes no positional arguments, got ${args.map((a) => JSON.stringify(a)).join(" ")}`);
  if (!flags.plan === !flags.plans) throw new FleetplanError("invalid_argument", "give exactly one of --plan FILE or --plans DIR");
  if (flags.via !== undefined && flags.via !== "ssh" && flags.via !== "store")
    throw new FleetplanError("invalid_argument", `--via: ${flags.via} must be ssh or store`);
  const rollout = isRollout(flags);
  if (flags.stage && (flags.wait || flags["dry-run"])) {
    throw new FleetplanError("invalid_argument", "--stage does not go with --wait or --dry-run: give --wait to `fleetplan approve`");
  }
  if (flags.trust !== undefined && !flags.stage) throw new FleetplanError("invalid_argument", "--trust FILE only applies to push --stage");
  const concurrency = Number(flags.concurrency ?? DEFAULT_CONCURRENCY);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new FleetplanError("invalid_argument", `--concurrency: ${flags.concurrency} must be a positive integer`);
  const waitTimeoutMs = parseDuration(flags.timeout ?? "10m", "--timeout");
  const expiresInMs = parseDuration(flags.expires ?? "24h", "--expires");
  if (expiresInMs < MIN_EXPIRES_MS) throw new FleetplanError("invalid_argument", `--expires: ${flags.expires} is below the minimum of 1m`);
  const maxAgeMs = parseDuration(flags["max-age"] ?? "30m", "--max-age");
  await sodiumReady();
  const signers = config.adminKeys.map(loadAdminKey);
  const targets = selectServers(db, flags, !!flags.plan);
  // --wait believes only signed status records: a host without an identity key can only time out.
  if (flags.wait) for (const t of targets.filter((t) => identityKeyOf(t) === null)) io.stderr(`warning: ${noIdentityWarning(t.host)}\n`);
  const single = flags.plan ? loadPlanFile(flags.plan) : null;
  const plans = single
    ? new Map(targets.map((t) => [t.host, single]))
    : loadPlanDir(
        flags.plans!,
        targets.map((t) => t.host),
      );
  const strays = flags.plans
    ? strayPlanFiles(
        flags.plans,
        db.servers().map((s) => s.host),
      )
    : [];
  if (strays.length > 0) io.stderr(`warning: plan files for hosts not in the inventory (not pushed; a typo?): ${strays.join(", ")}\n`);

  const store = lazyStore(config, logger);
  const openOnce = store.open;
  const dryRun = !!flags["dry-run"];
  if (flags.via !== "ssh") await markBootstrapped(db, targets, openOnce, logger, dryRun);
  if (flags.stage) {
    const input = {
      trustPath: flags.trust,
      targets,
      plans,
      force: !!flags.force,
      viaSsh: flags.via === "ssh",
      expiresInMs,
      concurrency,
      maxAgeMs,
      prometheus: flags.prometheus,
      rollout: rollout ? flags : null,
    };
    try {
      return await (await import("./staged.ts")).stagePush(input, config, db, io);
    } finally {
      await store.close();
    }
  }
  if (rollout) {
    try {
      return await startRollout({ ...flags, concurrency: String(concurrency) }, config, db, logger, io, targets, plans);
    } finally {
      await store.close();
    }
  }
  const progress = config.json ? null : createProgress(io, targets.length, ansiOn(process.stderr));
  const emit = (e: PushEvent) => (config.json ? io.stdout(`${JSON.stringify(e)}\n`) : progress!.onEvent(e));
  // Only while waiting, and once: before the wait and on a second Ctrl-C, Node's default ends the process.
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  const waitInterrupt = () => {
    process.once("SIGINT", onSigint);
    return interrupt.signal;
  };
  try {
    const summary = await push(
      {
        targets,
        plans,
        dryRun,
        force: !!flags.force,
        wait: !!flags.wait,
        waitTimeoutMs,
        expiresInMs,
        concurrency,
        viaSsh: flags.via === "ssh",
        waitInterrupt,
      },
      {
        db,
        signers,
        emit,
        ...commonPushDeps(config, logger, flags),
        store: openOnce,
        // Drifted hosts are pushed with their own decision, `drifted`.
        converged: convergedStates(db, maxAgeMs, flags.prometheus),
      },
    );
    progress?.end();
    // Which plan each delivered hash stands for: what a later rollout's --revert-on-failure pushes again.
    if (!dryRun)
      rolloutsOf(db, signers).rememberPlans(
        summary.targets.flatMap((t) => (t.id !== null ? [{ host: t.host, planHash: t.plan_hash, plan: plans.get(t.host)! }] : [])),
        Date.now(),
      );
    if (config.json) io.stdout(`${JSON.stringify({ event: "summary", ...summary })}\n`);
    else {
      const sorted = [...summary.targets].sort((a, b) => compareHosts(a.host, b.host));
      io.stdout(
        formatTable(
          ["host", "outcome", "id", "hash", "decision"],
          sorted.map((t) => [t.host, t.outcome, t.id, t.plan_hash.slice(0, 12), `${t.decision}${outcomeDetail(t)}`]),
        ),
      );
      io.stdout(
        `${summary.dry_run ? "dry run, nothing sent: " : ""}${Object.entries(summary.counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(", ")}\n`,
      );
      const refused = Object.entries(summary.status_refused);
      if (refused.length > 0) {
        const counts = refused.map(([k, v]) => `${v} ${k}`).join(", ");
        io.stdout(`status records refused (not signed by their host's node key, so not believed): ${counts}\n`);
      }
    }
    return interrupt.signal.aborted ? INTERRUPTED : exitCodeOf(summary);
  } finally {
    process.removeListener("SIGINT", onSigint);
    await store.close();
  }
};
