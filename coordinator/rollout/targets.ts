import { compareHosts } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import type { ServerRow } from "../db.ts";

// Which servers a command applies to, pure: `--servers` names and globs, `--group` one or more
// groups, `--all`, each narrowed by `--where k=v` (repeatable: all must hold). Every name,
// glob and group must select something: a typo is an error, never a silently smaller fleet.

export interface TargetFlags {
  servers?: string | undefined;
  group?: string | undefined;
  all?: boolean | undefined;
  where?: string[] | undefined;
}

/** Server tags: key → value. */
export type Tags = Record<string, string>;

const TAG_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
const TAG_VALUE = /^[^\s,=]{1,256}$/;
const GLOB = /[*?[]/;

/** Parse repeated `k=v` flags (`server add --tag`, `--where`); a key given twice is refused. */
export const parseTags = (flag: string, texts: readonly string[]): Tags => {
  const tags: Tags = {};
  for (const text of texts) {
    const at = text.indexOf("=");
    const [key, value] = at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + 1)];
    if (!TAG_KEY.test(key) || !TAG_VALUE.test(value)) {
      throw new FleetplanError(
        "invalid_argument",
        `${flag}: ${JSON.stringify(text)} must be KEY=VALUE (key [A-Za-z0-9_.-]{1,64}, value without spaces, commas or =)`,
      );
    }
    if (key in tags) {
      throw new FleetplanError("invalid_argument", `${flag}: key ${key} given twice (${tags[key]} and ${value}); give each key once`);
    }
    tags[key] = value;
  }
  return tags;
};

/** A shell-style glob (`*`, `?`, `[abc]`) as an anchored regular expression over a whole host name. */
export const globToRegExp = (glob: string): RegExp => {
  const body = glob
    .replace(/[.+^${}()|\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".")
    .replace(/\[!/g, "[^");
  try {
    return new RegExp(`^${body}$`);
  } catch {
    throw new FleetplanError("invalid_argument", `--servers: ${JSON.stringify(glob)} is not a valid glob (use *, ? and [abc])`);
  }
};

const list = (flag: string, text: string): string[] => {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  // Given but empty (e.g. an unset shell variable) must select nothing, never the whole fleet.
  if (items.length === 0) {
    throw new FleetplanError("invalid_argument", `${flag}: no ${flag === "--group" ? "group name" : "host names"} given`);
  }
  return items;
};

/** Servers named by `--servers` (names and globs): an unknown name or a glob matching nothing is an error naming it. */
const byNames = (all: readonly ServerRow[], text: string): ServerRow[] => {
  const patterns = list("--servers", text);
  const matchers = patterns.map((p) => ({ p, re: GLOB.test(p) ? globToRegExp(p) : null }));
  const unmatched = matchers.filter(({ p, re }) => !all.some((s) => (re ? re.test(s.host) : s.host === p))).map(({ p }) => p);
  if (unmatched.length > 0) {
    throw new FleetplanError(
      "not_found",
      `--servers: no server in the inventory matches ${unmatched.join(", ")}; see \`fleetplan server list\``,
    );
  }
  return all.filter((s) => matchers.some(({ p, re }) => (re ? re.test(s.host) : s.host === p)));
};

/** The inventory's groups, in natural order, for an error about an unknown one. */
const knownGroups = (all: readonly ServerRow[]): string => {
  const groups = [...new Set(all.flatMap((s) => (s.group === null ? [] : [s.group])))].sort(compareHosts);
  return groups.length > 0 ? groups.join(", ") : "none yet (fleetplan server add HOST --group G)";
};

/** Servers in any of the `--group` groups; a group with no server is an error naming it. */
const byGroups = (all: readonly ServerRow[], text: string): ServerRow[] => {
  const groups = list("--group", text);
  const empty = groups.filter((g) => !all.some((s) => s.group === g));
  if (empty.length > 0) {
    throw new FleetplanError("not_found", `--group: group(s) ${empty.join(", ")} empty or unknown; known groups: ${knownGroups(all)}`);
  }
  return all.filter((s) => s.group !== null && groups.includes(s.group));
};

/** The selected servers, in inventory order; `required`: selecting nothing at all is a usage error (push --plan). */
export const selectTargets = (
  all: readonly ServerRow[],
  tagsOf: (host: string) => Tags,
  flags: TargetFlags,
  required: boolean,
): ServerRow[] => {
  const given = [flags.servers, flags.group, flags.all].filter((v) => v !== undefined && v !== false).length;
  if (given > 1) {
    throw new FleetplanError("invalid_argument", "use only one of --servers, --group, --all (narrow any of them with --where k=v)");
  }
  const where = parseTags("--where", flags.where ?? []);
  if (given === 0 && required && flags.where === undefined) {
    throw new FleetplanError("invalid_argument", "choose targets with --servers a,'web-*', --group web,db, --all or --where k=v");
  }
  const base =
    flags.servers !== undefined ? byNames(all, flags.servers) : flags.group !== undefined ? byGroups(all, flags.group) : [...all];
  const selected = base.filter((s) => Object.entries(where).every(([k, v]) => tagsOf(s.host)[k] === v));
  if (selected.length === 0) {
    const why =
      flags.where !== undefined
        ? ` (none has tags ${flags.where.join(" and ")}; see \`fleetplan server list\`)`
        : " (is the inventory empty? see `fleetplan server add`)";
    throw new FleetplanError("not_found", `no servers selected${why}`);
  }
  return selected;
};
