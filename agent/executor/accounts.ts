// File owners: names resolve through /etc/passwd and /etc/group only (no NSS lookups, so a
// plan never waits on a directory service that the plan itself may be setting up); numeric
// ids pass through unchanged.
import { readFileSync } from "node:fs";
import type { PlanFile } from "../../shared/types.ts";
import { FileWriteError } from "./file-write-error.ts";

/** name → id from a passwd(5)/group(5) style file: name in field 1, id in field 3. */
export const parseIdFile = (text: string): Map<string, number> =>
  new Map(
    text
      .split("\n")
      .map((line) => line.split(":"))
      .filter((f) => f.length >= 3 && f[0] !== "" && /^\d+$/.test(f[2] ?? ""))
      .map((f) => [f[0] as string, Number(f[2])]),
  );

/** A resolver of each file's owner/group to ids (-1: leave unchanged), null when neither is set. */
export const accountIds = (passwdPath = "/etc/passwd", groupPath = "/etc/group") => {
  const tables = new Map<string, Map<string, number>>();
  const lookup = (path: string, kind: "user" | "group", name: string | undefined, file: string): number => {
    if (name === undefined) return -1;
    if (/^\d+$/.test(name)) return Number(name);
    if (!tables.has(path)) tables.set(path, parseIdFile(readFileSync(path, "utf8")));
    const id = tables.get(path)?.get(name);
    if (id === undefined)
      throw new FileWriteError(`file ${file}: unknown ${kind} ${JSON.stringify(name)} (not in ${path})`, { reason: "unknown_owner" });
    return id;
  };
  return (file: PlanFile): { uid: number; gid: number } | null =>
    file.owner === undefined && file.group === undefined
      ? null
      : { uid: lookup(passwdPath, "user", file.owner, file.path), gid: lookup(groupPath, "group", file.group, file.path) };
};
