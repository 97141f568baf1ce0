// `approve ID --admin-key OTHER.key`: the second half of the two-person rule. Checks the staged
// change may still go out and is intact, adds this admin's signature over the same signed bytes,
// and once the trust threshold of distinct keys is met publishes the envelopes through push().
import type { CliIo } from "../../shared/cli.ts";
import { ansiOn } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { loadAdminKey } from "../../shared/key-files.ts";
import { parseTrust } from "../../shared/keys.ts";
import type { Logger } from "../../shared/log.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb } from "../db.ts";
import { createProgress, outcomeDetail } from "../progress.ts";
import { push } from "../push.ts";
import type { PushEvent } from "../push.ts";
import { openStagingDb } from "../staging-db.ts";
import { addSignature, checkApprovable, checkIntact, newSigners, parseStagedName, stagedName } from "../staging.ts";
import { commonPushDeps, lazyStore } from "./push-deps.ts";
import { drive } from "./rollout.ts";

/** The flags `approve` takes (main.ts checked that no other is given). */
export interface ApproveFlags {
  wait?: boolean;
  timeout?: string;
  concurrency?: string;
  "ssh-config"?: string;
  "remote-agent"?: string;
}

/** `approve ID`: sign; publish once the threshold is met. Exit 0 when signed (and published), 1 when a delivery failed. */
export const approveCommand = async (
  args: string[],
  flags: ApproveFlags,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  logger: Logger,
  io: CliIo,
): Promise<number> => {
  const id = parseStagedName(args[0]);
  const name = stagedName(id);
  const waitTimeoutMs = parseDuration(flags.timeout ?? "10m", "--timeout");
  await sodiumReady();
  const staging = openStagingDb(db.sqlite);
  const change = staging.get(id);
  const staged = staging.envelopes(id);
  checkApprovable(change, staged, (host) => db.lastIssuedId(host), Date.now());
  const trust = parseTrust(change.trust, `trust set of ${name}`);
  for (const e of staged) checkIntact(e, change.signers, trust);
  const approvers = config.adminKeys.map(loadAdminKey);
  const fresh = newSigners(change, trust, approvers);
  const signers = [...change.signers, ...fresh.map((k) => k.keyId)];
  const envelopes = staged.map((e) => ({ ...e, envelope: fresh.reduce(addSignature, e.envelope) }));
  if (fresh.length > 0) staging.cosign(id, envelopes, signers);
  if (signers.length < trust.threshold) {
    const text =
      `${name} signed by ${fresh.map((k) => k.keyId).join(", ")}: ${signers.length} of ${trust.threshold} signatures; ` +
      `another admin approves with their own key to publish it\n`;
    io.stdout(config.json ? `${JSON.stringify({ ok: true, staged: name, state: "staged", signers, threshold: trust.threshold })}\n` : text);
    return 0;
  }
  const sealed = new Map(envelopes.map((e) => [e.host, e]));
  if (change.rolloutId !== null) {
    // A staged rollout: approved now, then wave by wave as any rollout, each wave delivering its co-signed envelopes.
    staging.close(id, "approved", Date.now());
    if (!config.json) io.stderr(`${name} approved with ${signers.length} signatures: rollout ${change.rolloutId} starts\n`);
    return drive(change.rolloutId, config, db, logger, io, flags, sealed);
  }

  const store = lazyStore(config, logger);
  const progress = config.json ? null : createProgress(io, envelopes.length, ansiOn(process.stderr));
  const emit = (e: PushEvent) => (config.json ? io.stdout(`${JSON.stringify(e)}\n`) : progress!.onEvent(e));
  try {
    const summary = await push(
      {
        targets: db.servers({ hosts: envelopes.map((e) => e.host) }),
        plans: new Map(),
        dryRun: false,
        force: false,
        wait: !!flags.wait,
        waitTimeoutMs,
        expiresInMs: change.expiresAt - Date.now(),
        concurrency: Number(flags.concurrency ?? 256),
        viaSsh: false,
        sealed,
      },
      {
        db,
        signers: approvers,
        emit,
        ...commonPushDeps(config, logger, flags),
        store: store.open,
        converged: async () => new Set(),
      },
    );
    progress?.end();
    // Kept staged when a delivery failed: approving again retries (the signatures are already there).
    if (summary.ok) staging.close(id, "approved", Date.now());
    if (config.json) io.stdout(`${JSON.stringify({ event: "summary", staged: name, signers, ...summary })}\n`);
    else {
      for (const t of summary.targets) {
        io.stdout(`${t.host.padEnd(24)} ${t.outcome.padEnd(12)} id ${t.id ?? "-"}  ${t.plan_hash.slice(0, 12)}${outcomeDetail(t)}\n`);
      }
      const counts = Object.entries(summary.counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(", ");
      const state = summary.ok ? "approved" : "not fully delivered (approve again to retry)";
      io.stdout(`${name} ${state} with ${signers.length} signatures: ${counts}\n`);
    }
    return summary.ok ? 0 : 1;
  } finally {
    await store.close();
  }
};
