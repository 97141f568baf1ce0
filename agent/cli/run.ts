import { createLogger } from "../../shared/log.ts";
import { createAgent } from "../agent.ts";
import { createNotifier } from "../sd-notify.ts";
import { createFeed } from "../store/select.ts";
import type { AgentConfig } from "../config.ts";

/** The daemon: run until SIGTERM/SIGINT, then stop the running step, record it, exit 0. */
export const runDaemon = async (config: AgentConfig): Promise<number> => {
  const logger = createLogger({ level: config.logLevel });
  const notifier = createNotifier();
  const agent = await createAgent(config, { feed: createFeed(config.store, logger.child({ host: config.hostname })), logger });
  notifier.ready(`watching ${config.hostname}`);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      logger.info("agent_stopping", { host: config.hostname, signal });
      notifier.stopping();
      resolve();
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  await agent.stop();
  return 0;
};
