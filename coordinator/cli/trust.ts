// `fleetplan trust rotate` and `fleetplan trust show`: the signed trust chain agents fetch from the store.
import { existsSync } from "node:fs";
import type { CliIo } from "../../shared/cli.ts";
import { parseCountFlag } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { readTextFile } from "../../shared/files.ts";
import { loadAdminKey, loadTrust } from "../../shared/key-files.ts";
import { keyIdOf, KeyType, parseKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { trustSigners } from "../../shared/trust.ts";
import { sideKey } from "../../shared/trust-layout.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb } from "../db.ts";
import { knownOf, missingLinks, planRotation, readTrustChain } from "../trust-chain.ts";
import type { ChainLink } from "../trust-chain.ts";
import { openTrustDb } from "../trust-db.ts";
import { openSideStore } from "../trust-store.ts";

/** The flags `trust rotate` and `trust show` take (main.ts checked that no other is given). */
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

// Signers are the keys of the previous and this version whose signature verifies, never the record's claims.
const describe = (link: ChainLink, previous: ChainLink | undefined) => ({
  version: link.state.version,
  threshold: link.state.trust.threshold,
  key_ids: [...link.state.trust.keys.keys()],
  expires: new Date(link.record.trust.expires).toISOString(),
  signer_ids: trustSigners(link.record, new Map([...(previous?.state.trust.keys ?? []), ...link.state.trust.keys])),
});

const line = (d: ReturnType<typeof describe>): string =>
  `version ${d.version}: ${d.threshold} of ${d.key_ids.join(", ")}; adoptable until ${d.expires}; signed by ${d.signer_ids.join(", ")}\n`;

/** The versions the coordinator database knows (none without a database): what the store may not have lost. */
type TrustMemory = ReturnType<typeof openTrustDb> | null;

/**
 * `trust rotate`: publish version N+1 (and version 1 from --root on the first rotation); versions the
 * database knows but the store lost are published again first, so the rotation builds on the newest set.
 */
const rotate = async (flags: TrustFlags, config: CoordinatorConfig, io: CliIo, memory: TrustMemory): Promise<number> => {
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
    const stored = await readTrustChain(side, config.store);
    const restored = missingLinks(stored, memory?.known() ?? []);
    const chain = [...stored, ...restored];
    const records = [...restored, ...planRotation({ ...input, chain })];
    memory?.remember(stored.map(knownOf), Date.now());
    for (const r of records) {
      await side.create(sideKey(config.store, { kind: "trust", version: r.version }), r.bytes);
      memory?.remember([r], Date.now());
    }
    const last = records.at(-1)!.state;
    const keyIds = [...last.trust.keys.keys()];
    if (restored.length > 0 && !config.json) {
      io.stderr(`warning: trust version(s) ${restored.map((r) => r.version).join(", ")} were missing from the store: published again\n`);
    }
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

/** `trust show`: every version in the store, verified link by link; a version the store lost is named. */
const show = async (config: CoordinatorConfig, io: CliIo, memory: TrustMemory): Promise<number> => {
  const side = await openSideStore(config.store);
  try {
    const chain = await readTrustChain(side, config.store);
    const lost = missingLinks(chain, memory?.known() ?? []).map((l) => l.version);
    memory?.remember(chain.map(knownOf), Date.now());
    if (lost.length > 0) {
      io.stderr(
        `warning: trust version(s) ${lost.join(", ")} are known to this coordinator's database but missing from the store ` +
          "(deleted?): the next `fleetplan trust rotate` publishes them again\n",
      );
    }
    const versions = chain.map((link, i) => describe(link, chain[i - 1]));
    if (config.json) io.stdout(`${JSON.stringify({ ok: true, versions })}\n`);
    else if (versions.length === 0) io.stdout("no trust rotation in the store: agents use their trust file (version 1)\n");
    else io.stdout(versions.map(line).join(""));
    return 0;
  } finally {
    await side.close();
  }
};

/** `trust rotate ...` or `trust show`; `openDb` opens the coordinator database, used when it exists. */
export const trustCommand = async (
  args: string[],
  flags: TrustFlags,
  config: CoordinatorConfig,
  io: CliIo,
  openDb?: () => Promise<CoordinatorDb>,
): Promise<number> => {
  await sodiumReady();
  const db = openDb && existsSync(config.db) ? await openDb() : null;
  try {
    const memory = db === null ? null : openTrustDb(db.sqlite);
    return await (args[0] === "rotate" ? rotate(flags, config, io, memory) : show(config, io, memory));
  } finally {
    db?.close();
  }
};
