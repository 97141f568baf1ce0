import { formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import { observe } from "../observe.ts";
import type { ObserveOptions } from "../observe.ts";
import { verdict } from "../verdict.ts";

export interface StatusRow {
  host: string;
  verdict: string;
  why: string;
  expected_id: number | null;
  reported_id: number | null;
  expected_hash: string | null;
  reported_hash: string | null;
  last_result: string | null;
  boot_time: number | null;
  applied_boot_time: number | null;
  scrape_age_s: number | null;
  error: string | null;
}

/** One row per server: expected (our database) against reported (metrics), and a verdict. */
export const fleetStatus = async (db: CoordinatorDb, servers: ServerRow[], opts: ObserveOptions & { maxAgeMs: number }): Promise<StatusRow[]> => {
  const now = (opts.now ?? Date.now)();
  const expected = db.expected();
  const { reported, errors } = await observe(servers, opts);
  return servers.map((s) => {
    const exp = expected.get(s.host) ?? null;
    const rep = reported.get(s.host) ?? null;
    const v = verdict(exp, rep, null, now, opts.maxAgeMs);
    return {
      host: s.host,
      verdict: v.verdict,
      why: v.reason,
      expected_id: exp?.id ?? null,
      reported_id: rep?.appliedId ?? null,
      expected_hash: exp?.planHash ?? null,
      reported_hash: rep?.planHash ?? null,
      last_result: rep?.lastRunSuccess === null || rep === null ? null : rep.running ? "running" : rep.lastRunSuccess === 1 ? "succeeded" : "failed",
      boot_time: rep?.bootTime ?? null,
      applied_boot_time: rep?.appliedBootTime ?? null,
      scrape_age_s: rep ? Math.max(0, Math.round((now - rep.scrapedAt) / 1000)) : null,
      error: errors.get(s.host) ?? null,
    };
  });
};

/** Print rows as JSON (array) or a table with a verdict summary line. */
export const printStatus = (rows: StatusRow[], json: boolean, io: CliIo): void => {
  if (json) {
    io.stdout(`${JSON.stringify(rows)}\n`);
    return;
  }
  const short = (h: string | null) => (h ? h.slice(0, 12) : null);
  io.stdout(formatTable(
    ["host", "verdict", "expected", "reported", "exp hash", "rep hash", "last run", "age s", "why"],
    rows.map((r) => [r.host, r.verdict, r.expected_id, r.reported_id, short(r.expected_hash), short(r.reported_hash), r.last_result, r.scrape_age_s, r.error ?? r.why]),
  ));
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  io.stdout(`${rows.length} servers: ${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}\n`);
};
