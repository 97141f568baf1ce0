import { execa } from "execa";
import { ExitCode, exitCodeFor } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { ServerRow } from "../db.ts";

export interface SshOptions {
  logger: Logger;
  /** `-F FILE` for ssh; by default the user's own ssh config, agent and known_hosts apply. */
  configFile?: string;
  /** Remote command that reads an envelope on stdin (default `fleetplan-agent apply - --json`). */
  remoteAgent?: string;
  connectTimeoutS?: number;
  /** Whole delivery, including the plan's run, ms. */
  timeoutMs?: number;
}

export interface SshResult {
  outcome: string;
  reason: string | null;
  message: string | null;
}

/** `user@host:port` → ssh arguments (port via -p, so IPv6 literals work). */
export const sshTarget = (spec: string): string[] => {
  // No leading "-": ssh would read the destination as an option (-oProxyCommand=...).
  const match = /^(?!-)(?:([^@]+)@)?(\[[^\]]+\]|[^:@]+)(?::(\d+))?$/.exec(spec);
  if (!match) throw new FleetplanError("invalid_argument", `ssh target ${JSON.stringify(spec)} is not [user@]host[:port]`);
  const [, user, host, port] = match;
  return [...(port ? ["-p", port] : []), `${user ? `${user}@` : ""}${host!.replace(/^\[|\]$/g, "")}`];
};

/** Map the remote agent's exit and JSON line to a push outcome; every failure names its cause. */
export const interpretApply = (host: string, exitCode: number | undefined, stdout: string, stderr: string): SshResult => {
  const lastLine = stdout.trim().split("\n").at(-1) ?? "";
  let reply: { ok?: boolean; reason?: string; result?: string; message?: string; failed_step?: string } | null = null;
  try {
    reply = lastLine.startsWith("{") ? JSON.parse(lastLine) : null;
  } catch {
    reply = null;
  }
  const tail =
    stderr
      .trim()
      .split("\n")
      .filter((l) => !l.startsWith("{"))
      .at(-1) ?? "";
  // A JSON reply means the agent ran, whatever else its stderr says.
  if (!reply && (exitCode === 127 || /command not found|No such file/i.test(tail))) {
    return {
      outcome: "ssh_failed",
      reason: "agent_missing",
      message: `fleetplan-agent is not installed on ${host} (${tail || "command not found"})`,
    };
  }
  if (exitCode === 255) return { outcome: "ssh_failed", reason: "ssh_failed", message: `ssh to ${host}: ${tail || "connection failed"}` };
  if (!reply)
    return { outcome: "ssh_failed", reason: "ssh_failed", message: `${host}: no result from the agent (exit ${exitCode}): ${tail}` };
  if (reply.ok) return { outcome: "succeeded", reason: reply.reason ?? null, message: null };
  // Only verification refuses an envelope; any other error (e.g. the agent's own config) is a failed delivery.
  if (reply.reason && !reply.result)
    return {
      outcome: exitCodeFor(reply.reason) === ExitCode.Rejected ? "rejected" : "ssh_failed",
      reason: reply.reason,
      message: reply.message ?? null,
    };
  return {
    outcome: reply.result === "interrupted" ? "interrupted" : "failed",
    reason: reply.result ?? "failed",
    message: reply.failed_step ? `step ${reply.failed_step} failed` : (reply.message ?? null),
  };
};

/** Day-0 delivery: the same envelope piped to `fleetplan-agent apply -` over OpenSSH (batch mode). */
export const createSshDelivery =
  (opts: SshOptions) =>
  async (server: ServerRow, envelope: Uint8Array): Promise<SshResult> => {
    if (!server.ssh)
      throw new FleetplanError("invalid_argument", `${server.host} has no ssh address in the inventory (server add --ssh user@host:port)`);
    const args = [
      // Command-line options win over any ssh config: whoever answers without the known host key
      // must never receive an envelope or be believed about its outcome.
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `ConnectTimeout=${opts.connectTimeoutS ?? 10}`,
      "-o",
      "ServerAliveInterval=15",
      ...(opts.configFile ? ["-F", opts.configFile] : []),
      ...sshTarget(server.ssh),
      opts.remoteAgent ?? "fleetplan-agent apply - --json",
    ];
    opts.logger.info("ssh_deliver", { host: server.host, ssh: server.ssh, bytes: envelope.length });
    const result = await execa("ssh", args, {
      input: Buffer.from(envelope),
      reject: false,
      timeout: opts.timeoutMs ?? 3_600_000,
      stripFinalNewline: false,
    });
    if (result.timedOut) return { outcome: "ssh_failed", reason: "ssh_failed", message: `ssh to ${server.host} timed out` };
    // ssh itself did not run (not installed here) or was killed: there is no exit code to read.
    if (result.exitCode === undefined)
      return {
        outcome: "ssh_failed",
        reason: "ssh_failed",
        message: `ssh to ${server.host}: ${result.originalMessage ?? result.shortMessage}`,
      };
    return interpretApply(server.host, result.exitCode, String(result.stdout), String(result.stderr));
  };
