// `fleetplan heartbeat`: sign each host's freshness record (the latest id issued for it, valid until
// --expires) and put it under the host's own key, so an agent can tell it is being withheld updates.
import type { CliIo } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { signFreshness } from "../../shared/freshness.ts";
import { loadAdminKey } from "../../shared/key-files.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { sideKey } from "../../shared/trust-layout.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import { openSideStore } from "../trust-store.ts";

/** Put a freshness record for every target; returns the exit code (4 when any put failed). */
export const heartbeatCommand = async (
  targets: ServerRow[],
  expiresText: string | undefined,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  io: CliIo,
): Promise<number> => {
  await sodiumReady();
  const ttlMs = parseDuration(expiresText ?? "1h", "--expires");
  const signers = config.adminKeys.map(loadAdminKey);
  const side = await openSideStore(config.store);
  const failed: string[] = [];
  try {
    const issued = Date.now();
    await Promise.all(
      targets.map(async ({ host }) => {
        const record = { host, latest_id: db.lastIssuedId(host) ?? 0, issued, expires: issued + ttlMs };
        await side.put(sideKey(config.store, { kind: "fresh", host }), signFreshness(record, signers)).catch((error: unknown) => {
          failed.push(host);
          io.stderr(`${host}: ${(error as Error).message}\n`);
        });
      }),
    );
  } finally {
    await side.close();
  }
  const value = { hosts: targets.length, failed, expires: new Date(Date.now() + ttlMs).toISOString() };
  io.stdout(
    config.json
      ? `${JSON.stringify({ ok: failed.length === 0, ...value })}\n`
      : `freshness records for ${targets.length - failed.length} of ${targets.length} host(s), valid until ${value.expires}\n`,
  );
  return failed.length === 0 ? 0 : 4;
};
