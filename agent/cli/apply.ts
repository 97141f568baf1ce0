import { readFileSync } from "node:fs";
import { ExitCode, exitCodeFor } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { createAgent } from "../agent.ts";
import type { AgentConfig } from "../config.ts";
import type { Ledger } from "../ledger.ts";

/** Read all of stdin, refusing more than `limit` bytes. */
const readStdin = async (limit: number): Promise<Uint8Array> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FleetplanError("invalid_argument", `stdin: envelope exceeds ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
};

/** An envelope file's bytes; a missing or unreadable file is named, not an internal error. */
export const readEnvelopeFile = (path: string): Uint8Array => {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new FleetplanError(
      "not_found",
      `cannot read envelope ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
};

/** Why a run did not succeed: its error (which names the step), else the step. */
const why = (failedStep: string | null, error: string | null): string =>
  error ? `: ${error}` : failedStep ? ` at step ${JSON.stringify(failedStep)}` : "";

/**
 * A duplicate is only as good as the run it repeats: report that run's recorded state. A
 * duplicate has the high-water mark's id, so its run is among the newest.
 */
const reportDuplicate = (ledger: Ledger, host: string, id: number | null, message: string, json: boolean, io: CliIo): number => {
  const run = id === null ? undefined : ledger.runs(8).find((r) => r.id === id);
  const result = run?.state ?? "unknown";
  const ok = result === "succeeded";
  const detail = { failed_step: run?.failedStep ?? null, error: run?.error ?? null };
  io.stdout(
    json
      ? `${JSON.stringify({ ok, host, id, reason: "duplicate", result, message, ...(!ok && detail) })}\n`
      : ok
        ? `already applied: ${message} (duplicate)\n`
        : `${host}: provisioning id ${id} was already accepted and its run ${run ? result : "is no longer in the ledger"}${why(detail.failed_step, detail.error)} (duplicate)\n`,
  );
  return ok ? ExitCode.Ok : ExitCode.Failed;
};

/**
 * One envelope from a file or stdin through the same checks and ledger as the daemon (the
 * SSH day-0 path). Prints one result; exit 0 on success, or on a duplicate whose run succeeded.
 */
export const applyOnce = async (source: string, config: AgentConfig, json: boolean, io: CliIo): Promise<number> => {
  const bytes = source === "-" ? await readStdin(config.limits.maxEnvelopeBytes) : readEnvelopeFile(source);
  const agent = await createAgent({ ...config, metricsListen: null }, { feed: null, logger: createLogger({ level: config.logLevel }) });
  const interrupt = () => void agent.stop();
  process.once("SIGTERM", interrupt);
  process.once("SIGINT", interrupt);
  try {
    const submitted = agent.submit(bytes, { source: "apply", revision: null });
    if (!submitted.accepted) {
      if (submitted.reason === "duplicate")
        return reportDuplicate(agent.ledger, config.hostname, submitted.id, submitted.message, json, io);
      const result = { ok: false, host: config.hostname, id: submitted.id, reason: submitted.reason, message: submitted.message };
      io.stdout(json ? `${JSON.stringify(result)}\n` : `rejected: ${submitted.message} (${submitted.reason})\n`);
      return exitCodeFor(submitted.reason);
    }
    const outcome = await submitted.outcome;
    const result = outcome === "superseded" ? "superseded" : outcome.result;
    const detail =
      outcome === "superseded"
        ? {}
        : { failed_step: outcome.failedStep, duration_ms: outcome.durationMs, log_file: outcome.logFile, error: outcome.error };
    io.stdout(
      json
        ? `${JSON.stringify({ ok: result === "succeeded", host: config.hostname, id: submitted.id, result, ...detail })}\n`
        : `${config.hostname}: provisioning id ${submitted.id} ${result}${outcome === "superseded" ? "" : why(outcome.failedStep, outcome.error)}\n`,
    );
    return result === "succeeded" ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    process.off("SIGTERM", interrupt);
    process.off("SIGINT", interrupt);
    await agent.stop();
  }
};
