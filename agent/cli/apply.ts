import { readFileSync } from "node:fs";
import { ExitCode, exitCodeFor } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { createAgent } from "../agent.ts";
import type { AgentConfig } from "../config.ts";

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

/**
 * One envelope from a file or stdin through the same checks and ledger as the daemon (the
 * SSH day-0 path). Prints one result; exit 0 on success or benign duplicate.
 */
export const applyOnce = async (source: string, config: AgentConfig, json: boolean, io: CliIo): Promise<number> => {
  const bytes = source === "-" ? await readStdin(config.limits.maxEnvelopeBytes) : readFileSync(source);
  const agent = await createAgent({ ...config, metricsListen: null }, { feed: null, logger: createLogger({ level: config.logLevel }) });
  const interrupt = () => void agent.stop();
  process.once("SIGTERM", interrupt);
  process.once("SIGINT", interrupt);
  try {
    const submitted = agent.submit(bytes, { source: "apply", revision: null });
    if (!submitted.accepted) {
      const benign = submitted.reason === "duplicate";
      const result = { ok: benign, host: config.hostname, id: submitted.id, reason: submitted.reason, message: submitted.message };
      io.stdout(json ? `${JSON.stringify(result)}\n` : `${benign ? "already applied" : "rejected"}: ${submitted.message} (${submitted.reason})\n`);
      return benign ? ExitCode.Ok : exitCodeFor(submitted.reason);
    }
    const outcome = await submitted.outcome;
    const result = outcome === "superseded" ? "superseded" : outcome.result;
    const detail = outcome === "superseded" ? {} : { failed_step: outcome.failedStep, duration_ms: outcome.durationMs, log_file: outcome.logFile, error: outcome.error };
    io.stdout(json
      ? `${JSON.stringify({ ok: result === "succeeded", host: config.hostname, id: submitted.id, result, ...detail })}\n`
      : `${config.hostname}: provisioning id ${submitted.id} ${result}${"failed_step" in detail && detail.failed_step ? ` at step ${JSON.stringify(detail.failed_step)}` : ""}\n`);
    return result === "succeeded" ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    process.off("SIGTERM", interrupt);
    process.off("SIGINT", interrupt);
    await agent.stop();
  }
};
