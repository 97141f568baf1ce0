import { createLogger } from "../../shared/log.ts";
import { createAgent } from "../agent.ts";
import { createNotifier } from "../sd-notify.ts";
import { createFeed } from "../store/select.ts";
import type { AgentConfig } from "../config.ts";

/**
 * The daemon: run until SIGTERM/SIGINT, then stop the running step, record it, exit 0. The
 * signals are caught before anything starts: one that arrives while the agent is starting (its
 * metrics port may already answer) ends it cleanly once started, never by Node's default kill.
 */
export const runDaemon = async (config: AgentConfig): Promise<number> => {
  const logger = createLogger({ level: config.logLevel });
  const notifier = createNotifier();
  let received: string | null = null;
  let wake: (() => void) | null = null;
  const onSignal = (signal: string) => {
    received ??= signal;
    wake?.();
  };
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));
  // SIGUSR1: check the applied plan's files for drift now (before the agent runs, there is nothing to check).
  let checkDrift: (() => unknown) | null = null;
  process.on("SIGUSR1", () => checkDrift?.());
  const agent = await createAgent(config, { feed: createFeed(config.store, logger.child({ host: config.hostname })), logger });
  checkDrift = () => agent.checkDrift();
  notifier.ready(`watching ${config.hostname}`);
  if (received === null) await new Promise<void>((resolve) => (wake = resolve));
  logger.info("agent_stopping", { host: config.hostname, signal: received });
  notifier.stopping();
  await agent.stop();
  return 0;
};
