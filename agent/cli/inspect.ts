import type { CliIo } from "../../shared/cli.ts";
import { ExitCode, exitCodeFor } from "../../shared/cli.ts";
import { openEnvelope, parseEnvelope, verifySignatures } from "../../shared/envelope.ts";
import { EnvelopeError, FleetplanError } from "../../shared/errors.ts";
import { loadNodeKey, loadTrust } from "../../shared/key-files.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { readEnvelopeFile } from "./apply.ts";

export interface InspectOptions {
  trust?: string;
  key?: string;
  hostname?: string;
}

/**
 * Show an envelope's header and signers and what verification says. Decrypts only with
 * --key, and then shows file paths and step names, never contents.
 */
export const inspectEnvelope = async (file: string, opts: InspectOptions, json: boolean, io: CliIo): Promise<number> => {
  if (opts.key && !opts.trust)
    throw new FleetplanError("invalid_argument", "--key needs --trust: nothing is decrypted before its signatures verify");
  await sodiumReady();
  const bytes = readEnvelopeFile(file);
  const report: Record<string, unknown> = { file, bytes: bytes.length };
  let code: number = ExitCode.Ok;
  try {
    const parts = parseEnvelope(bytes);
    Object.assign(report, { header: parts.header, signer_ids: parts.signatures.map((s) => s.keyId) });
    if (opts.trust) report.verified_signers = verifySignatures(parts, loadTrust(opts.trust));
    if (opts.key) {
      const opened = openEnvelope(bytes, {
        hostname: opts.hostname ?? parts.header.target,
        nodeKeys: loadNodeKey(opts.key),
        trust: loadTrust(opts.trust!),
        highWaterMark: { id: 0, planHash: null },
        now: Date.now(),
      });
      report.plan = {
        files: opened.plan.files.map((f) => ({
          path: f.path,
          mode: f.mode.toString(8).padStart(4, "0"),
          owner: f.owner ?? null,
          group: f.group ?? null,
          bytes: Buffer.from(f.content, "base64").length,
        })),
        steps: opened.plan.steps.map((s) => ({ name: s.name, timeout_s: s.timeout_s ?? null, env: Object.keys(s.env ?? {}) })),
      };
    }
    report.ok = true;
    report.verification = opts.trust
      ? opts.key
        ? "signatures verified, decrypted, hash and plan valid"
        : "signatures verified (not decrypted)"
      : "not verified (no --trust)";
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error;
    Object.assign(report, { ok: false, reason: error.reason, message: error.message });
    code = exitCodeFor(error.reason);
  }
  io.stdout(json ? `${JSON.stringify(report)}\n` : `${JSON.stringify(report, null, 2)}\n`);
  return code;
};
