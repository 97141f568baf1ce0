// `logs HOST [--id N]`: the tail of a failed run's output, which the agent sealed to the admin
// keys it trusts and signed with its node identity. The store is untrusted: a record that is not
// signed by the host's identity key (inventory) is refused, never shown.
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadAdminKey } from "../../shared/key-files.ts";
import type { Logger } from "../../shared/log.ts";
import { openOutput } from "../../shared/output-seal.ts";
import type { OutputMeta } from "../../shared/output-seal.ts";
import { printableLine, printableText } from "../../shared/printable.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AdminKeyPair, PlanStore } from "../../shared/types.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb } from "../db.ts";
import { identityKeyOf, noIdentityWarning } from "../status-evidence.ts";
import { openStore } from "../store/select.ts";

/** An output record opened with one of the admin keys: its metadata and the plaintext tail. */
export type OpenedOutput = OutputMeta & { output: Uint8Array };

/**
 * Open the newest record (without `id`), or the newest for `id`, with whichever admin key it is sealed to.
 * Without `id` only the newest counts: a forged newest record is refused, never passed over for an older one.
 */
const pickOutput = (
  records: Uint8Array[],
  host: string,
  identityKey: Uint8Array,
  admins: AdminKeyPair[],
  id: number | null,
): OpenedOutput => {
  let lastError: unknown = null;
  const seen: number[] = [];
  for (const record of id === null ? records.slice(0, 1) : records) {
    for (const admin of admins) {
      try {
        const opened = openOutput(record, host, identityKey, admin);
        if (id === null || opened.id === id) return opened;
        seen.push(opened.id);
        break;
      } catch (error) {
        lastError = error;
        if ((error as { reason?: string }).reason !== "not_a_recipient") break;
      }
    }
  }
  if (seen.length > 0) {
    const stored = seen.join(", ");
    throw new FleetplanError(
      "not_found",
      `${host}: no stored output for id ${id} (stored: ${stored}); the store keeps the last 5 failures`,
    );
  }
  if (lastError) throw lastError;
  throw new FleetplanError("not_found", `${host}: no failed run's output in the store (only a failed run leaves one)`);
};

const parseId = (text: string | undefined): number | null => {
  if (text === undefined) return null;
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < 1) {
    const what = `--id: ${JSON.stringify(text)} is not a provisioning id`;
    throw new FleetplanError("invalid_argument", `${what} (a positive integer, as \`fleetplan history HOST\` shows them)`);
  }
  return Number(text);
};

const describe = (o: OpenedOutput): string => {
  const step = o.failed_step === null ? "before any step (files)" : `step ${o.failed_step + 1}`;
  const exit = o.exit_code === null ? "" : `, exit code ${o.exit_code}`;
  return `${o.host} id ${o.id} failed ${new Date(o.at).toISOString()}: ${printableLine(o.failure_reason ?? "failed")} at ${step}${exit}`;
};

/** `fleetplan logs HOST [--id N]`: fetch, verify, open and print; --json gives one object. */
export const logsCommand = async (
  args: string[],
  flags: { id?: string },
  config: CoordinatorConfig,
  db: CoordinatorDb,
  logger: Logger,
  io: CliIo,
  open: () => Promise<PlanStore> = () => openStore(config.store, logger),
): Promise<number> => {
  const host = args[0];
  if (host === undefined) throw new FleetplanError("invalid_argument", "usage: fleetplan logs HOST [--id N]");
  const id = parseId(flags.id);
  const [server] = db.servers({ hosts: [host] });
  const identityKey = identityKeyOf(server!);
  if (identityKey === null) throw new FleetplanError("no_identity_key", noIdentityWarning(host));
  await sodiumReady();
  const admins = config.adminKeys.map(loadAdminKey);
  const store = await open();
  let records: Uint8Array[];
  try {
    if (!store.outputs) throw new FleetplanError("invalid_argument", `the ${store.kind} store keeps no run output`);
    records = await store.outputs(host);
  } finally {
    await store.close();
  }
  const opened = pickOutput(records, host, identityKey, admins, id);
  const text = new TextDecoder().decode(opened.output);
  if (config.json) io.stdout(`${JSON.stringify({ ...opened, at: new Date(opened.at).toISOString(), output: text })}\n`);
  // The node is untrusted and its output reaches the operator's terminal: control characters are shown, never obeyed.
  else io.stdout(`${describe(opened)}\n${printableText(text)}${text.endsWith("\n") || text === "" ? "" : "\n"}`);
  return 0;
};
