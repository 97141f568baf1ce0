// `push --stage` and `staged [show ID | discard ID]`: the two-person rule's I/O edge. Envelopes are
// sealed and signed by the admin key(s) given (fewer than the trust threshold), their ids reserved,
// and kept in the coordinator database until `approve` (cli/approve.ts) adds signatures and publishes.
import { userInfo } from "node:os";
import type { CliIo } from "../../shared/cli.ts";
import { formatTable } from "../../shared/cli.ts";
import { parseEnvelope } from "../../shared/envelope.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadAdminKey, loadTrust } from "../../shared/key-files.ts";
import { formatTrust, parseTrust } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { describeStore } from "../../shared/store-config.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import type { LoadedPlan } from "../plan-source.ts";
import { push } from "../push.ts";
import { openStagingDb } from "../staging-db.ts";
import { changeText, describeChange, parseStagedName, stagedName } from "../staging.ts";
import type { StagedChange, StagedEnvelope } from "../staging.ts";
import { createRollout, rolloutsOf } from "./rollout.ts";
import { convergedStates } from "./push-deps.ts";
import type { RolloutFlags } from "./rollout.ts";

/** What `push --stage` needs from the push command: its checked flags, targets and plans. */
export interface StageInput {
  trustPath: string | undefined;
  targets: ServerRow[];
  plans: Map<string, LoadedPlan>;
  force: boolean;
  viaSsh: boolean;
  expiresInMs: number;
  concurrency: number;
  maxAgeMs: number;
  prometheus: string | undefined;
  /** push --waves|--batch --stage: the rollout's flags (it is recorded paused and runs once approved). */
  rollout: RolloutFlags | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The trust set a staged change is checked against: the agents' trust file, which `push --stage` requires. */
const stageTrust = (trustPath: string | undefined) => {
  if (trustPath === undefined) {
    throw new FleetplanError(
      "invalid_argument",
      "push --stage needs --trust FILE: the trust file the agents have (print it with " +
        "`fleetplan trust --admin-key A.key --admin-key B.key --threshold 2`); approval is checked against its keys and threshold",
    );
  }
  return loadTrust(trustPath);
};

/** `push --stage`: seal, sign with the given admin key(s), reserve ids, keep it all as a staged change; publish nothing. */
export const stagePush = async (input: StageInput, config: CoordinatorConfig, db: CoordinatorDb, io: CliIo): Promise<number> => {
  await sodiumReady();
  const trust = stageTrust(input.trustPath);
  const signers = [...new Map(config.adminKeys.map(loadAdminKey).map((k) => [k.keyId, k])).values()];
  const untrusted = signers.filter((k) => !trust.keys.has(k.keyId)).map((k) => k.keyId);
  if (untrusted.length > 0) {
    const ids = untrusted.join(", ");
    throw new FleetplanError("untrusted_signer", `admin key ${ids} is not in ${input.trustPath}: stage with a key the agents trust`);
  }
  if (signers.length >= trust.threshold) {
    throw new FleetplanError(
      "invalid_argument",
      `${signers.length} admin key(s) already meet the threshold ${trust.threshold} of ${input.trustPath}: push without --stage`,
    );
  }
  if (input.rollout?.["revert-on-failure"]) {
    throw new FleetplanError(
      "invalid_argument",
      "--revert-on-failure does not go with --stage: a revert seals new envelopes, which one admin cannot sign alone",
    );
  }
  const expected = db.expected();
  const staged: StagedEnvelope[] = [];
  const summary = await push(
    {
      targets: input.targets,
      plans: input.plans,
      dryRun: false,
      force: input.force || input.rollout !== null,
      wait: false,
      waitTimeoutMs: 0,
      expiresInMs: input.expiresInMs,
      concurrency: input.concurrency,
      viaSsh: input.viaSsh,
    },
    {
      db,
      signers,
      emit: () => {},
      storeName: describeStore(config.store),
      now: () => new Date(),
      operator: userInfo().username,
      store: () => Promise.reject(new FleetplanError("invalid_argument", "a staged push publishes nothing")),
      converged: convergedStates(db, input.maxAgeMs, input.prometheus),
      stage: (r, envelope) => {
        const before = expected.get(r.host);
        staged.push({
          host: r.host,
          id: r.id!,
          planHash: r.plan_hash,
          prevId: before?.id ?? null,
          prevHash: before?.planHash ?? null,
          via: r.via,
          envelope,
        });
      },
    },
  );
  const failed = summary.targets.filter((t) => t.outcome !== "staged" && t.outcome !== "skipped");
  if (failed.length > 0) {
    const named = failed.map((t) => `${t.host}: ${t.message ?? t.outcome}`).join("; ");
    const why = `${failed.length} target(s) could not be sealed (${named})`;
    throw new FleetplanError("invalid_argument", `nothing staged: ${why}; fix them and stage again`);
  }
  const skipped = summary.targets.filter((t) => t.outcome === "skipped").map((t) => t.host);
  if (staged.length === 0) {
    const text = "nothing to stage: every target converged on its plan\n";
    io.stdout(config.json ? `${JSON.stringify({ ok: true, staged: null, skipped })}\n` : text);
    return 0;
  }
  rolloutsOf(db, signers).rememberPlans(
    staged.map((s) => ({ host: s.host, planHash: s.planHash, plan: input.plans.get(s.host)! })),
    Date.now(),
  );
  // A staged rollout is recorded now (its plans sealed to the stager's key), paused until approved.
  const rolloutId = input.rollout === null ? null : await createRollout(input.rollout, config, db, io, input.targets, input.plans);
  const change = {
    rolloutId,
    createdAt: Date.now(),
    expiresAt: parseEnvelope(staged[0]!.envelope).header.expires,
    operator: userInfo().username,
    trust: formatTrust([...trust.keys.values()], trust.threshold),
    signers: signers.map((k) => k.keyId),
    envelopes: staged,
  };
  const id = openStagingDb(db.sqlite).create(change);
  if (rolloutId !== null) {
    const why = `staged as ${stagedName(id)}: \`fleetplan approve ${stagedName(id)}\` runs it with both signatures`;
    rolloutsOf(db).setState(rolloutId, "paused", 0, why, Date.now());
  }
  const record: StagedChange = { ...change, id, state: "staged", closedAt: null };
  if (config.json) io.stdout(`${JSON.stringify({ ok: true, ...describeStaged(record, staged), skipped })}\n`);
  else {
    printStaged(record, staged, io);
    if (skipped.length > 0) io.stdout(`skipped (converged on this plan): ${skipped.join(", ")}\n`);
    io.stdout(
      `next: a second admin runs \`fleetplan approve ${stagedName(id)} --admin-key OTHER.key [--wait]\`; ` +
        `\`fleetplan staged discard ${stagedName(id)}\` drops it\n`,
    );
  }
  return 0;
};

/** A staged change as `--json` prints it: hosts with their ids, plan hashes and what changes. */
const describeStaged = (c: StagedChange, envelopes: StagedEnvelope[]) => ({
  staged: stagedName(c.id),
  state: c.state,
  rollout: c.rolloutId,
  operator: c.operator,
  created_at: iso(c.createdAt),
  expires_at: iso(c.expiresAt),
  signers: c.signers,
  threshold: parseTrust(c.trust, stagedName(c.id)).threshold,
  hosts: envelopes.map((e) => ({
    host: e.host,
    id: e.id,
    plan_hash: e.planHash,
    prev_id: e.prevId,
    prev_hash: e.prevHash,
    via: e.via,
    bytes: e.envelope.length,
    change: describeChange(e).kind,
  })),
});

/** Header line and one row per host. */
const printStaged = (c: StagedChange, envelopes: StagedEnvelope[], io: CliIo): void => {
  const threshold = parseTrust(c.trust, stagedName(c.id)).threshold;
  const rollout = c.rolloutId === null ? "" : ` (rollout ${c.rolloutId})`;
  io.stdout(
    `${stagedName(c.id)}${rollout} ${c.state}: ${envelopes.length} host(s), signed by ${c.signers.join(", ")} ` +
      `(${c.signers.length} of ${threshold} signatures), by ${c.operator}, created ${iso(c.createdAt)}, expires ${iso(c.expiresAt)}\n`,
  );
  const rows = envelopes.map((e) => [e.host, e.id, e.planHash.slice(0, 12), changeText(e), e.via]);
  io.stdout(formatTable(["host", "id", "plan", "change", "via"], rows));
};

/** `staged [--json]` (what waits), `staged show ID`, `staged discard ID`. */
export const stagedCommand = async (args: string[], config: CoordinatorConfig, db: CoordinatorDb, io: CliIo): Promise<number> => {
  const staging = openStagingDb(db.sqlite);
  const [sub, arg] = args;
  switch (sub) {
    case undefined: {
      const changes = staging.list();
      if (config.json) io.stdout(`${JSON.stringify(changes.map((c) => describeStaged(c, staging.envelopes(c.id))))}\n`);
      else if (changes.length === 0) io.stdout("nothing staged\n");
      else for (const c of changes) printStaged(c, staging.envelopes(c.id), io);
      return 0;
    }
    case "show": {
      const change = staging.get(parseStagedName(arg));
      if (config.json) io.stdout(`${JSON.stringify(describeStaged(change, staging.envelopes(change.id)))}\n`);
      else printStaged(change, staging.envelopes(change.id), io);
      return 0;
    }
    default: {
      // "discard": main.ts refuses any other subcommand
      const change = staging.get(parseStagedName(arg));
      if (!staging.close(change.id, "discarded", Date.now())) {
        throw new FleetplanError("conflict", `${stagedName(change.id)} is ${change.state}; only a staged change can be discarded`);
      }
      const text = `${stagedName(change.id)} discarded: nothing was published; its reserved ids stay unused\n`;
      io.stdout(config.json ? `${JSON.stringify({ ok: true, staged: stagedName(change.id), state: "discarded" })}\n` : text);
      return 0;
    }
  }
};
