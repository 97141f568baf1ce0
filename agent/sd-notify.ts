import { execFile } from "node:child_process";

/**
 * sd_notify through the `systemd-notify` binary: Node has no unix datagram sockets. The
 * unit sets NotifyAccess=all because the message comes from a child process (systemd-notify
 * 252 as root waits for systemd to take the message, so it is attributed to our unit).
 */
export const createNotifier = (env: NodeJS.ProcessEnv = process.env) => {
  const socket = env.NOTIFY_SOCKET;
  const watchdogUs = Number(env.WATCHDOG_USEC ?? 0);
  const send = (...messages: string[]) => {
    if (!socket) return;
    execFile("systemd-notify", messages, { env: { ...env, NOTIFY_SOCKET: socket } }, () => {});
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    ready(status: string): void {
      send("READY=1", `STATUS=${status}`);
      if (watchdogUs > 0) {
        timer = setInterval(() => send("WATCHDOG=1"), Math.max(1000, watchdogUs / 2000));
        timer.unref();
      }
    },
    status(status: string): void {
      send(`STATUS=${status}`);
    },
    stopping(): void {
      clearInterval(timer);
      send("STOPPING=1");
    },
  };
};
