import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitListening } from "./ports.ts";

export interface Sshd {
  port: number;
  /** Public host key, `ssh-ed25519 AAAA…`, as known_hosts needs it. */
  hostKey: string;
  /** `ssh -F` file: user root, the one client key the server accepts, strict checking against `knownHosts`. */
  clientConfig: string;
  /** The client's known_hosts, holding `[127.0.0.1]:port hostKey`. */
  knownHosts: string;
  /** sshd's stderr so far (with -e it logs there). */
  log(): string;
  stop(): Promise<void>;
}

/** A fresh ed25519 key pair `path` / `path.pub` with no passphrase; returns the public line. */
export const sshKeygen = (path: string): string => {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "fleetplan-test", "-f", path], { stdio: "ignore" });
  return readFileSync(`${path}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
};

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));

/**
 * A real OpenSSH server on a random loopback port with its own host key, accepting only a
 * client key generated here (public-key auth as the current user), plus the matching client
 * config, so `ssh -F clientConfig -p port root@127.0.0.1` needs nothing from ~/.ssh.
 */
export const startSshd = async (): Promise<Sshd> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-sshd-"));
  const port = await freePort();
  const hostKey = sshKeygen(join(dir, "host_key"));
  const clientKey = sshKeygen(join(dir, "client_key"));
  writeFileSync(join(dir, "authorized_keys"), `${clientKey}\n`, { mode: 0o600 });
  const serverConfig = join(dir, "sshd_config");
  writeFileSync(
    serverConfig,
    [
      "ListenAddress 127.0.0.1",
      `Port ${port}`,
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  const clientConfig = join(dir, "ssh_config");
  writeFileSync(
    clientConfig,
    [
      "Host *",
      "  User root",
      `  IdentityFile ${join(dir, "client_key")}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${knownHosts}`,
      "  GlobalKnownHostsFile /dev/null",
      "  StrictHostKeyChecking yes",
      "  BatchMode yes",
      "",
    ].join("\n"),
  );
  // sshd refuses to start without its privilege-separation directory.
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", serverConfig], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const stop = async () => {
    child.kill("SIGTERM");
    await exited(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitListening(port, 10_000, `sshd on ${port}`),
      exited(child).then(() => {
        throw new Error(`sshd exited ${child.exitCode}: ${log}`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, hostKey, clientConfig, knownHosts, log: () => log, stop };
};
