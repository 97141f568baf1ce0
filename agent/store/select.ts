import type { Logger } from "../../shared/log.ts";
import type { PlanFeed, StoreConfig } from "../../shared/types.ts";
import { createConsulFeed } from "./consul-feed.ts";
import { createNatsFeed } from "./nats-feed.ts";

/** The feed for the configured store kind. */
export const createFeed = (store: StoreConfig, logger: Logger): PlanFeed =>
  store.kind === "consul" ? createConsulFeed(store, { logger }) : createNatsFeed(store, { logger });
