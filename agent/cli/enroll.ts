import type { CliIo } from "../../shared/cli.ts";
import { signAnnouncement } from "../../shared/enrollment.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadNodeKey } from "../../shared/key-files.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { describeStore } from "../../shared/store-config.ts";
import { isValidHostname } from "../../shared/wire.ts";
import type { AgentConfig } from "../config.ts";
import { buildAnnouncement, enrollmentFacts, putAnnouncement } from "../enroll.ts";

const ENROLL_USAGE = "usage: fleetplan-agent enroll --store URL --bootstrap-creds FILE [--host H] [config flags]";

/**
 * `enroll --bootstrap-creds FILE [--host H]`: sign this node's announcement with its identity and
 * put it where `fleetplan server pending` reads it. Run once after keygen; again after a key change.
 */
export const enrollNode = async (config: AgentConfig, flags: { bootstrapCreds?: string; host?: string }, json: boolean, io: CliIo) => {
  if (!flags.bootstrapCreds) {
    throw new FleetplanError(
      "invalid_argument",
      "enroll needs --bootstrap-creds FILE (bootstrap.creds from `fleetplan store credentials`; for Consul a file holding the " +
        `bootstrap token); ${ENROLL_USAGE}`,
    );
  }
  await sodiumReady();
  const host = flags.host ?? config.hostname;
  if (!isValidHostname(host)) throw new FleetplanError("invalid_argument", `--host: ${JSON.stringify(host)} is not a valid hostname`);
  const keys = loadNodeKey(config.nodeKeyPath);
  const announcement = buildAnnouncement(host, keys, enrollmentFacts(config.procStat), Date.now());
  const record = signAnnouncement(announcement, keys.identity.privateKey);
  const sequence = await putAnnouncement(config.store, flags.bootstrapCreds, host, record);
  const store = describeStore(config.store);
  io.stdout(
    json
      ? `${JSON.stringify({ ok: true, host, key_id: keys.keyId, store, sequence })}\n`
      : `announced ${host} (node key ${keys.keyId}) to ${store}\n` +
          `On the coordinator: fleetplan server pending, then fleetplan server accept ${host} --fingerprint ${keys.keyId}\n`,
  );
  return 0;
};
