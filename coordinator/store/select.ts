import type { Logger } from "../../shared/log.ts";
import type { PlanStore, StoreConfig } from "../../shared/types.ts";
import { createConsulStore } from "./consul-store.ts";
import { createNatsStore } from "./nats-store.ts";

/** The store for the configured kind, connected. */
export const openStore = async (store: StoreConfig, logger: Logger): Promise<PlanStore> =>
  store.kind === "consul" ? createConsulStore(store, { logger }) : createNatsStore(store, { logger });
