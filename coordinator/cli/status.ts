import { compareHosts, formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { withTimeout } from "../../shared/retry.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { Logger } from "../../shared/log.ts";
import type { AgentStatus, StatusRecord, StoreConfig } from "../../shared/types.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import type { Reported } from "../metrics-parse.ts";
import { observe } from "../observe.ts";
import type { ObserveOptions } from "../observe.ts";
import { expectedTextfile } from "../prometheus-files.ts";
import { recordLateOutcomes } from "../late-outcomes.ts";
import { createConsulStore } from "../store/consul-store.ts";
import { createNatsStore } from "../store/nats-store.ts";
import { createStatusVerifier, identityKeyOf, noIdentityWarning } from "../status-evidence.ts";
import { verdict } from "../verdict.ts";
import { writeForPrometheus } from "./prometheus-out.ts";

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
  /** Why the store's status record for this host was not believed (status-evidence.ts reasons), else null. */
  status_refused: string | null;
  /** Set for a host whose inventory key has no identity key: how to migrate it. */
  warning: string | null;
}

export interface StatusOptions extends ObserveOptions {
  maxAgeMs: number;
  /** Every agent's status record from the store: read best-effort, within STORE_READ_MS. */
  statuses?: () => Promise<StatusRecord[]>;
}

/** The store only adds proof of failures to status: it gets this long, then status goes on without it. */
export const STORE_READ_MS = 2000;

/**
 * One read of every agent's status from the configured store, for status: one connection
 * attempt, timeouts no longer than status waits; the store is closed even when status has
 * stopped waiting for the read.
 */
export const storeStatuses = (config: StoreConfig, logger: Logger) => async (): Promise<StatusRecord[]> => {
  const bounded = { ...config, timeoutMs: Math.min(config.timeoutMs, STORE_READ_MS) };
  const store =
    bounded.kind === "consul"
      ? createConsulStore(bounded, { logger, attempts: 1 })
      : await createNatsStore(bounded, { logger, attempts: 1 });
  try {
    return await store.statuses();
  } finally {
    await store.close();
  }
};

const readStatuses = async (read: StatusOptions["statuses"]): Promise<{ records: StatusRecord[]; error: string | null }> => {
  if (read === undefined) return { records: [], error: null };
  try {
    return {
      records: await withTimeout(read(), STORE_READ_MS, () => new Error(`no answer within ${STORE_READ_MS / 1000} s`)),
      error: null,
    };
  } catch (error) {
    return { records: [], error: `store status not read: ${(error as Error).message}` };
  }
};

/** Per host, the verified status (evidence) or why its record was refused; records under other keys are left out. */
const verifiedStatuses = (servers: ServerRow[], records: StatusRecord[]) => {
  const verify = createStatusVerifier(servers);
  const hosts = new Set(servers.map((s) => s.host));
  const valid = new Map<string, AgentStatus>();
  const refused = new Map<string, string>();
  for (const record of records.filter((r) => hosts.has(r.key))) {
    const checked = verify(record);
    if (checked.ok) valid.set(record.key, checked.status);
    else refused.set(record.key, checked.reason);
  }
  return { valid, refused };
};

/** Metrics served for another agent (a metrics URL copied from another server) are no data for this one. */
const foreignMetrics = (s: ServerRow, r: Reported, where: string): string | null =>
  r.host === s.host && r.nodeKeyId === s.nodeKeyId
    ? null
    : `metrics at ${where} belong to ${r.host ?? "?"}/${r.nodeKeyId ?? "?"}, not ${s.host}/${s.nodeKeyId}`;

/** One row per server: expected (our database) against reported (metrics, store status), and a verdict. */
export const fleetStatus = async (db: CoordinatorDb, servers: ServerRow[], opts: StatusOptions): Promise<StatusRow[]> => {
  // Verifying status records needs libsodium: without this a record would be refused as unreadable.
  await sodiumReady();
  const now = (opts.now ?? Date.now)();
  const expected = db.expected();
  const [{ reported, errors }, store] = await Promise.all([observe(servers, opts), readStatuses(opts.statuses)]);
  const statuses = verifiedStatuses(servers, store.records);
  // A host that timed out in an earlier push --wait and has reported since: its history gets the outcome.
  recordLateOutcomes(db, statuses.valid, now);
  return servers.map((s) => {
    const exp = expected.get(s.host) ?? null;
    const seen = reported.get(s.host) ?? null;
    const where = opts.prometheus ? `Prometheus ${opts.prometheus}` : (s.metricsUrl ?? "?");
    const foreign = seen === null ? null : foreignMetrics(s, seen, where);
    const rep = foreign === null ? seen : null;
    // Only a record signed by this host's identity key may prove a failure: a refused one changes nothing.
    const v = verdict(exp, rep, statuses.valid.get(s.host) ?? null, now, opts.maxAgeMs);
    return {
      host: s.host,
      verdict: v.verdict,
      why: v.reason,
      expected_id: exp?.id ?? null,
      reported_id: rep?.appliedId ?? null,
      expected_hash: exp?.planHash ?? null,
      reported_hash: rep?.planHash ?? null,
      last_result:
        rep?.lastRunSuccess === null || rep === null ? null : rep.running ? "running" : rep.lastRunSuccess === 1 ? "succeeded" : "failed",
      boot_time: rep?.bootTime ?? null,
      applied_boot_time: rep?.appliedBootTime ?? null,
      scrape_age_s: rep ? Math.max(0, Math.round((now - rep.scrapedAt) / 1000)) : null,
      // An unread store matters only where it might have proven a failure.
      error: foreign ?? errors.get(s.host) ?? (v.verdict === "converged" ? null : store.error),
      status_refused: statuses.refused.get(s.host) ?? null,
      warning: identityKeyOf(s) === null ? noIdentityWarning(s.host) : null,
    };
  });
};

/**
 * `status --textfile FILE`: every inventory host's expectation (whatever --servers/--group select, since the
 * file replaces the last one) for node_exporter's textfile collector; written before status reads any metrics.
 */
export const writeExpectedTextfile = (db: CoordinatorDb, path: string, io: CliIo): void => {
  const hosts = new Set(db.servers().map((s) => s.host));
  const expected = new Map([...db.expected()].filter(([host]) => hosts.has(host)));
  const file = { path, what: "--textfile", endings: [".prom"], reader: "node_exporter's textfile collector" };
  writeForPrometheus(file, expectedTextfile(expected), io);
};

/** The width `status` keeps to without --wide: a 120-column terminal. */
const STATUS_COLUMNS = 120;

/** `3d ago`, `5h ago`, `12m ago`: a boot time (unix seconds) at a glance; the ISO time is in --wide and --json. */
const bootAge = (bootSeconds: number | null, now: number): string | null => {
  if (bootSeconds === null) return null;
  const s = Math.max(0, Math.round(now / 1000 - bootSeconds));
  return s >= 86_400 ? `${Math.floor(s / 86_400)}d ago` : s >= 3600 ? `${Math.floor(s / 3600)}h ago` : `${Math.floor(s / 60)}m ago`;
};

const iso = (seconds: number | null) => (seconds === null ? null : new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z"));
const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`);

/** The table of rows (in print order): everything with `wide`, else the columns that matter, host and why clipped to 120 columns. */
const statusTable = (sorted: StatusRow[], wide: boolean, now: number): string => {
  const short = (h: string | null) => (h ? h.slice(0, 12) : null);
  if (wide) {
    return formatTable(
      ["host", "verdict", "expected", "reported", "exp hash", "rep hash", "last run", "booted", "applied in boot", "age s", "why"],
      sorted.map((r) => [
        r.host,
        r.verdict,
        r.expected_id,
        r.reported_id,
        short(r.expected_hash),
        short(r.reported_hash),
        r.last_result,
        iso(r.boot_time),
        iso(r.applied_boot_time),
        r.scrape_age_s,
        r.error ?? r.why,
      ]),
    );
  }
  // The ids are in why ("applied id N", "agent at N"); --wide and --json have them apart.
  const cells = sorted.map((r) => [clip(r.host, 32), r.verdict, r.last_result, r.scrape_age_s, bootAge(r.boot_time, now)]);
  const head = ["host", "verdict", "last run", "age s", "booted"];
  const used = formatTable(head, cells)
    .split("\n")
    .reduce((w, line) => Math.max(w, line.length), 0);
  const room = Math.max(12, STATUS_COLUMNS - used - 2);
  return formatTable(
    [...head, "why"],
    cells.map((c, i) => [...c, clip(sorted[i]!.error ?? sorted[i]!.why, room)]),
  );
};

/** Print rows, hosts in natural order, as JSON (array) or a table (120 columns; everything with `wide`) and a summary line. */
export const printStatus = (unsorted: StatusRow[], json: boolean, io: CliIo, wide = false, now = Date.now()): void => {
  const rows = [...unsorted].sort((a, b) => compareHosts(a.host, b.host));
  if (json) {
    io.stdout(`${JSON.stringify(rows)}\n`);
    return;
  }
  io.stdout(statusTable(rows, wide, now));
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  io.stdout(`${rows.length} servers: ${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}\n`);
  const refused = rows.filter((r) => r.status_refused !== null && r.status_refused !== "no_identity_key");
  if (refused.length > 0) {
    const which = refused.map((r) => `${r.host} (${r.status_refused})`).join(", ");
    io.stderr(`warning: ${refused.length} status record(s) refused, not signed by their host's node key (ignored): ${which}\n`);
  }
  for (const r of rows) if (r.warning !== null) io.stderr(`warning: ${r.warning}\n`);
};
