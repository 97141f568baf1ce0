// `fleetplan trust rotate` and `fleetplan trust show`: the signed trust chain agents fetch from the store.
import type { CliIo } from "../../shared/cli.ts";
import { parseCountFlag } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { readTextFile } from "../../shared/files.ts";
import { loadAdminKey, loadTrust } from "../../shared/key-files.ts";
import { keyIdOf, KeyType, parseKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { sideKey } from "../../shared/trust-layout.ts";
import type { CoordinatorConfig } from "../config.ts";
import { planRotation, readTrustChain } from "../trust-chain.ts";
import type { ChainLink } from "../trust-chain.ts";
import { openSideStore } from "../trust-store.ts";

export interface TrustFlags {
  add?: string[];
  remove?: string[];
  threshold?: string;
  root?: string;
  expires?: string;
}

/** An admin public key given as a `.pub` file or as its key line. */
const publicKeyArg = (flag: string, value: string): Uint8Array => {
  const isLine = value.trim().startsWith(`${KeyType.AdminPublic} `);
  return parseKey(isLine ? value : readTextFile(value, `${flag} key`), KeyType.AdminPublic, isLine ? flag : `${flag} ${value}`);
};

/** `--remove` takes a key id (16 hex digits) too: a stolen key's public file may be gone. */
const removedId = (value: string): string => (/^[0-9a-f]{16}$/.test(value) ? value : keyIdOf(publicKeyArg("--remove", value)));

const describe = (link: ChainLink) => ({
  version: link.state.version,
  threshold: link.state.trust.threshold,
  key_ids: [...link.state.trust.keys.keys()],
  expires: new Date(link.record.trust.expires).toISOString(),
  signer_ids: link.record.sigs.map((s) => s.key_id),
});

const line = (d: ReturnType<typeof describe>): string =>
  `version ${d.version}: ${d.threshold} of ${d.key_ids.join(", ")}; adoptable until ${d.expires}; signed by ${d.signer_ids.join(", ")}\n`;

/** `trust rotate`: publish version N+1 (and version 1 from --root on the first rotation). */
const rotate = async (flags: TrustFlags, config: CoordinatorConfig, io: CliIo): Promise<number> => {
  if (flags.root === undefined) {
    throw new FleetplanError(
      "invalid_argument",
      "trust rotate needs --root FILE: the trust file installed on the agents (/etc/fleetplan/trust)",
    );
  }
  if (!flags.add?.length && !flags.remove?.length && flags.threshold === undefined) {
    throw new FleetplanError("invalid_argument", "trust rotate needs --add KEY.pub, --remove KEY.pub|KEY_ID or --threshold K");
  }
  const input = {
    add: (flags.add ?? []).map((v) => publicKeyArg("--add", v)),
    remove: (flags.remove ?? []).map(removedId),
    threshold: flags.threshold === undefined ? null : parseCountFlag("--threshold", flags.threshold),
    root: loadTrust(flags.root),
    signers: config.adminKeys.map(loadAdminKey),
    expires: Date.now() + parseDuration(flags.expires ?? "365d", "--expires"),
  };
  const side = await openSideStore(config.store);
  try {
    const chain = await readTrustChain(side, config.store);
    const records = planRotation({ ...input, chain });
    for (const r of records) await side.create(sideKey(config.store, { kind: "trust", version: r.version }), r.bytes);
    const last = records.at(-1)!.state;
    const keyIds = [...last.trust.keys.keys()];
    const value = { published: records.map((r) => r.version), version: last.version, key_ids: keyIds, threshold: last.trust.threshold };
    io.stdout(
      config.json
        ? `${JSON.stringify({ ok: true, ...value })}\n`
        : `published trust version ${last.version}: ${last.trust.threshold} of ${value.key_ids.join(", ")}\n` +
            "agents adopt it on its notice (at most a minute later); sign pushes with the new set's keys from now on\n",
    );
    return 0;
  } finally {
    await side.close();
  }
};

/** `trust show`: every version in the store, verified link by link. */
const show = async (config: CoordinatorConfig, io: CliIo): Promise<number> => {
  const side = await openSideStore(config.store);
  try {
    const versions = (await readTrustChain(side, config.store)).map(describe);
    if (config.json) io.stdout(`${JSON.stringify({ ok: true, versions })}\n`);
    else if (versions.length === 0) io.stdout("no trust rotation in the store: agents use their trust file (version 1)\n");
    else io.stdout(versions.map(line).join(""));
    return 0;
  } finally {
    await side.close();
  }
};

/** `trust rotate ...` or `trust show`. */
export const trustCommand = async (args: string[], flags: TrustFlags, config: CoordinatorConfig, io: CliIo): Promise<number> => {
  await sodiumReady();
  if (args[0] === "rotate") return rotate(flags, config, io);
  return show(config, io);
};
