import { isIPv4, isIPv6 } from "node:net";
import { dirname, extname, isAbsolute, resolve } from "node:path";
import { jsonErrorAt } from "../shared/cli.ts";
import { FleetplanError } from "../shared/errors.ts";
import { isNodePublicText, loadNodePublicKey } from "../shared/key-files.ts";
import { formatNodePublicKey } from "../shared/keys.ts";
import { isReservedHost } from "../shared/trust-layout.ts";
import { isValidHostname } from "../shared/wire.ts";
import type { ServerRow } from "./db.ts";
import { parseTags } from "./rollout/targets.ts";
import type { Tags } from "./rollout/targets.ts";

// Inventory input (`server add` flags, `server import FILE`) is checked completely before
// anything is written: every problem is collected and reported in one error, by line or index.
// Node keys are parsed with libsodium: callers await sodiumReady() first.

/** One server as given by an operator; every field still untrusted. */
export interface ServerInput {
  host?: unknown;
  node_key?: unknown;
  metrics?: unknown;
  ssh?: unknown;
  group?: unknown;
  bootstrapped?: unknown;
  /** JSON only, as `server list --json` prints it: checked against node_key. */
  node_key_id?: unknown;
  /** JSON only: an object of tag key → value. */
  tags?: unknown;
}

/** One server of an import file, with the tags it sets. */
export interface ImportedServer extends ServerRow {
  tags: Tags;
}

export interface InventoryOptions {
  /** Relative node key paths resolve against this directory (the import file's). */
  baseDir?: string;
  /** unix ms recorded as addedAt */
  now?: number;
  /** Hosts already in the inventory: importing one again is a problem like any other. */
  existing?: ReadonlySet<string>;
}

/** `server list --json` prints these two beside FIELDS: a JSON import takes them back. */
const JSON_FIELDS = ["node_key_id", "tags"] as const;

const FIELDS = ["host", "node_key", "metrics", "ssh", "group", "bootstrapped"] as const;
const GROUP = /^[A-Za-z0-9_.-]{1,64}$/;
const SSH = /^(?:([A-Za-z0-9_][A-Za-z0-9_.-]*)@)?(\[[0-9A-Fa-f:.]+\]|[^@:[\]]+)(?::(\d{1,5}))?$/;
const MAX_LISTED = 50;
const TRUE = new Set(["true", "1", "yes"]);
const FALSE = new Set(["false", "0", "no"]);

type Check<T> = (value: string) => T;
const fail = (message: string): never => {
  throw new FleetplanError("invalid_argument", message);
};

/** http(s) URL of an agent's /metrics; `host:port` or a bare origin gets `http://` and `/metrics`; a bare word is refused. */
export const normalizeMetricsUrl: Check<string> = (raw) => {
  if (!raw.includes("://") && !/:\d+$/.test(raw)) {
    fail(`${JSON.stringify(raw)} is not an http(s) URL; give http://HOST:PORT/metrics (or HOST:PORT)`);
  }
  let url: URL;
  try {
    url = new URL(raw.includes("://") ? raw : `http://${raw}`);
  } catch {
    return fail(`${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") fail(`scheme must be http or https, got ${url.protocol}`);
  if (url.hostname === "") fail("URL has no host");
  // Credentials would end up in the database and in status output.
  if (url.username !== "" || url.password !== "") fail("URL must not contain credentials");
  if (url.hash !== "") fail("URL must not have a #fragment");
  if (url.pathname === "/") url.pathname = "/metrics";
  return url.toString();
};

const checkSsh: Check<string> = (raw) => {
  const match = SSH.exec(raw);
  if (match === null) return fail(`${JSON.stringify(raw)} is not [user@]host[:port]`);
  const [, , host = "", port] = match;
  const hostOk = host.startsWith("[") ? isIPv6(host.slice(1, -1)) : isIPv4(host) || isValidHostname(host);
  if (!hostOk) fail(`${JSON.stringify(host)} is not a hostname or IP address`);
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) fail(`port ${port} is not in 1..65535`);
  return raw;
};

const checkGroup: Check<string> = (raw) => (GROUP.test(raw) ? raw : fail(`${JSON.stringify(raw)} must match [A-Za-z0-9_.-]{1,64}`));

/** Either public line form is kept as given: the old X25519-only form has no identity key (see noIdentityWarning). */
const checkNodeKey =
  (baseDir: string): Check<{ nodeKey: string; nodeKeyId: string }> =>
  (raw) => {
    const ref = loadNodePublicKey(isNodePublicText(raw) || isAbsolute(raw) ? raw : resolve(baseDir, raw));
    return { nodeKey: formatNodePublicKey(ref), nodeKeyId: ref.keyId };
  };

const checkBootstrapped = (value: unknown): boolean => {
  if (value === undefined || value === null || value === "") return true;
  if (typeof value === "boolean") return value;
  const text = String(value).toLowerCase();
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  return fail(`${JSON.stringify(value)} is not true/false`);
};

/** JSON `tags` ({"rack": "b2"}): the same rules as `--tag k=v`. */
const checkTags = (value: unknown): Tags => {
  if (value === undefined || value === null) return {};
  const isObject = typeof value === "object" && !Array.isArray(value);
  if (!isObject || Object.values(value).some((v) => typeof v !== "string")) return fail("must be an object of strings");
  return parseTags(
    "tags",
    Object.entries(value as Tags).map(([k, v]) => `${k}=${v}`),
  );
};

/** Check one input; problems are appended to `problems`, prefixed with `where`. */
const checkServer = (
  input: ServerInput,
  where: string,
  problems: string[],
  opts: InventoryOptions,
  allowed: readonly string[] = FIELDS,
): ImportedServer | null => {
  const start = problems.length;
  const field = <T>(name: (typeof FIELDS)[number], required: boolean, check: Check<T>): T | null => {
    const value = input[name];
    if (value === undefined || value === null || value === "") {
      if (required) problems.push(`${where}: ${name} is required`);
      return null;
    }
    if (typeof value !== "string") {
      problems.push(`${where}: ${name} must be a string`);
      return null;
    }
    try {
      return check(value.trim());
    } catch (error) {
      problems.push(`${where}: ${name}: ${(error as Error).message}`);
      return null;
    }
  };
  const host = field("host", true, (h) =>
    !isValidHostname(h)
      ? fail(`${JSON.stringify(h)} is not a valid hostname`)
      : isReservedHost(h)
        ? fail(`${JSON.stringify(h)}: names starting with _trust. or _fresh. are reserved (trust and freshness records)`)
        : h,
  );
  const key = field("node_key", true, checkNodeKey(opts.baseDir ?? process.cwd()));
  const metricsUrl = field("metrics", false, normalizeMetricsUrl);
  const ssh = field("ssh", false, checkSsh);
  const group = field("group", false, checkGroup);
  let bootstrapped = true;
  try {
    bootstrapped = checkBootstrapped(input.bootstrapped);
  } catch (error) {
    problems.push(`${where}: bootstrapped: ${(error as Error).message}`);
  }
  // Without the agent, SSH is the only way in: every push would fail (a bad ssh is reported above).
  if (!bootstrapped && (input.ssh === undefined || input.ssh === null || input.ssh === "")) {
    problems.push(`${where}: ssh is required when bootstrapped is false (plans go over SSH until the agent runs)`);
  }
  if (host !== null && opts.existing?.has(host)) problems.push(`${where}: host ${host} is already in the inventory`);
  const keyId = input.node_key_id;
  if (key !== null && keyId !== undefined && keyId !== null && keyId !== key.nodeKeyId) {
    const fix = "fix or drop node_key_id";
    problems.push(`${where}: node_key_id ${JSON.stringify(keyId)} does not match node_key (whose id is ${key.nodeKeyId}); ${fix}`);
  }
  let tags: Tags = {};
  try {
    tags = checkTags(input.tags);
  } catch (error) {
    problems.push(`${where}: tags: ${(error as Error).message}`);
  }
  const unknown = Object.keys(input).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) problems.push(`${where}: unknown field(s) ${unknown.join(", ")}; expected ${allowed.join(", ")}`);
  if (problems.length > start || host === null || key === null) return null;
  return { host, ...key, metricsUrl, ssh, group, bootstrapped, addedAt: opts.now ?? Date.now(), tags };
};

/**
 * One node key on several hosts: each would decrypt the others' plans and could sign their
 * status. Every host of `rows` whose key another host (in `rows` or `inventory`) has; empty when none.
 */
const sharedKeyProblems = (rows: readonly ServerRow[], inventory: readonly ServerRow[]): string[] => {
  const holders = new Map<string, string[]>();
  const changed = new Set(rows.map((r) => r.host));
  for (const r of [...inventory.filter((s) => !changed.has(s.host)), ...rows]) {
    holders.set(r.nodeKeyId, [...(holders.get(r.nodeKeyId) ?? []), r.host]);
  }
  return rows.flatMap((r) => {
    const others = holders.get(r.nodeKeyId)!.filter((h) => h !== r.host);
    return others.length === 0 ? [] : [`${r.host}: node key ${r.nodeKeyId} is also the key of ${others.join(", ")}`];
  });
};

/** Refuse shared node keys unless the operator said --allow-shared-key. */
export const refuseSharedKeys = (rows: readonly ServerRow[], inventory: readonly ServerRow[], allow: boolean): void => {
  const problems = allow ? [] : sharedKeyProblems(rows, inventory);
  if (problems.length === 0) return;
  const listed = problems
    .slice(0, MAX_LISTED)
    .map((p) => `  ${p}`)
    .join("\n");
  throw new FleetplanError(
    "invalid_argument",
    `one node key on several hosts (each could read the others' plans), nothing written:\n${listed}\n` +
      "give each host its own key (fleetplan-agent keygen), or pass --allow-shared-key if this is deliberate",
  );
};

const throwProblems = (what: string, problems: string[]): void => {
  if (problems.length === 0) return;
  const listed = problems.slice(0, MAX_LISTED).map((p) => `  ${p}`);
  if (problems.length > MAX_LISTED) listed.push(`  ... and ${problems.length - MAX_LISTED} more`);
  throw new FleetplanError("invalid_argument", `${what}: ${problems.length} problem(s), nothing written:\n${listed.join("\n")}`);
};

/** Validate one server (e.g. from `server add` flags); one error lists every problem. */
export const validateServerInput = (input: ServerInput, opts: InventoryOptions = {}): ServerRow => {
  const problems: string[] = [];
  const row = checkServer(input, "server", problems, opts);
  throwProblems("invalid server", problems);
  const { tags: _tags, ...server } = row!;
  return server;
};

/** Split one CSV line (RFC 4180 quoting, no embedded newlines). */
const splitCsvLine = (line: string): string[] => {
  const out: string[] = [];
  const field = /\s*(?:"((?:[^"]|"")*)"|([^,"]*))\s*(,|$)/y;
  for (;;) {
    const match = field.exec(line);
    if (match === null) return fail("bad quoting");
    out.push(match[1] !== undefined ? match[1].replace(/""/g, '"') : match[2]!.trim());
    if (match[3] === "") return out;
  }
};

/** One entry of an import file: its input, or why it could not even be read. */
type Entry = { where: string; input: ServerInput } | { where: string; problem: string };

/** CSV rows as entries with their line numbers; header problems go to `problems`. */
const csvInputs = (text: string, source: string, problems: string[]): Entry[] => {
  const lines = text
    .split(/\r?\n/)
    .map((line, i) => ({ line, n: i + 1 }))
    .filter(({ line }) => line.trim() !== "");
  const [head, ...rows] = lines;
  if (head === undefined) return [];
  const columns = splitCsvLine(head.line).map((c) => c.toLowerCase());
  const bad = columns.filter((c, i) => !(FIELDS as readonly string[]).includes(c) || columns.indexOf(c) !== i);
  if (bad.length > 0)
    problems.push(`${source}:${head.n}: header has unknown or repeated column(s) ${bad.join(", ")}; expected ${FIELDS.join(",")}`);
  if (!columns.includes("host") || !columns.includes("node_key")) problems.push(`${source}:${head.n}: header must name host and node_key`);
  if (problems.length > 0) return [];
  return rows.map(({ line, n }): Entry => {
    const where = `${source}:${n}`;
    try {
      const values = splitCsvLine(line);
      if (values.length !== columns.length) return { where, problem: `expected ${columns.length} fields, got ${values.length}` };
      return { where, input: Object.fromEntries(columns.map((c, i) => [c, values[i]])) as ServerInput };
    } catch (error) {
      return { where, problem: (error as Error).message };
    }
  });
};

const jsonInputs = (text: string, source: string, problems: string[]): Entry[] => {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    problems.push(`${source}: not valid JSON: ${jsonErrorAt(text, (error as Error).message)}`);
    return [];
  }
  if (!Array.isArray(doc)) {
    problems.push(`${source}: expected a JSON array of servers`);
    return [];
  }
  return doc.map((item, i): Entry => {
    const where = `${source}[${i}]`;
    const isObject = typeof item === "object" && item !== null && !Array.isArray(item);
    return isObject ? { where, input: item as ServerInput } : { where, problem: "expected an object" };
  });
};

/** Parse `server import FILE` (JSON array as `server list --json` prints, or CSV with a header); all-or-nothing. */
export const parseServerImport = (text: string, filename: string, opts: InventoryOptions = {}): ImportedServer[] => {
  const problems: string[] = [];
  const isJson =
    extname(filename).toLowerCase() === ".json" || (extname(filename).toLowerCase() !== ".csv" && text.trimStart().startsWith("["));
  const inputs = isJson ? jsonInputs(text, filename, problems) : csvInputs(text, filename, problems);
  if (inputs.length === 0 && problems.length === 0) problems.push(`${filename}: no servers`);
  const firstSeen = new Map<string, string>();
  const rows: ImportedServer[] = [];
  const options = { baseDir: dirname(resolve(filename)), ...opts };
  const allowed = isJson ? [...FIELDS, ...JSON_FIELDS] : FIELDS;
  for (const entry of inputs) {
    const { where } = entry;
    if ("problem" in entry) {
      problems.push(`${where}: ${entry.problem}`);
      continue;
    }
    const row = checkServer(entry.input, where, problems, options, allowed);
    if (row === null) continue;
    const earlier = firstSeen.get(row.host);
    if (earlier !== undefined) problems.push(`${where}: host ${row.host} already appears at ${earlier}`);
    else firstSeen.set(row.host, where);
    rows.push(row);
  }
  throwProblems(`cannot import ${filename}`, problems);
  return rows;
};
