import { connect } from "@nats-io/transport-node";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import { withRetry } from "../../shared/retry.ts";
import { describeStore } from "../../shared/store-config.ts";
import type { CoordinatorConfig } from "../config.ts";
import { ensureStoreLayout } from "../store/nats-layout.ts";
import { storeCredentials } from "./credentials.ts";
import type { BucketOutcome } from "../store/nats-layout.ts";

/** What a `store` subcommand gets: its arguments after the subcommand name, the parsed flags, config and output. */
export interface StoreContext {
  args: string[];
  values: Record<string, unknown>;
  config: CoordinatorConfig;
  logger: Logger;
  io: CliIo;
}

/** The `store` subcommands (main.ts checked flags and arguments); add one entry per subcommand. */
export const STORE_SUBCOMMANDS: Record<string, (ctx: StoreContext) => Promise<number>> = {
  init: (ctx) => storeInit(ctx.config, ctx.logger, ctx.io),
  credentials: (ctx) => storeCredentials(ctx),
};

/** `fleetplan store <sub>`: one entry of STORE_SUBCOMMANDS (main.ts refuses any other subcommand). */
export const storeCommand = (args: string[], ctx: Omit<StoreContext, "args">): Promise<number> => {
  const [sub, ...rest] = args;
  return STORE_SUBCOMMANDS[sub!]!({ ...ctx, args: rest });
};

const line = (o: BucketOutcome): string =>
  `${o.bucket} (stream ${o.stream}): ${o.action}${o.drift.length > 0 ? ` (was: ${o.drift.join("; ")})` : ""}\n`;

/**
 * `fleetplan store init`: create both NATS buckets with the layout agents need, or update them.
 * Idempotent; retried while a cluster is still electing its JetStream leader.
 */
export const storeInit = async (config: CoordinatorConfig, logger: Logger, io: CliIo): Promise<number> => {
  const store = config.store;
  if (store.kind !== "nats") {
    const what = describeStore(store);
    throw new FleetplanError("invalid_argument", `store init sets up NATS buckets; ${what} needs no setup (pass --store nats://...)`);
  }
  const nc = await connect(natsConnectOptions(store, { name: "fleetplan-init", forever: false })).catch((e: unknown) => {
    throw new FleetplanError("store_unavailable", `NATS at ${store.servers.join(",")}: ${(e as Error).message}`, { cause: e });
  });
  try {
    const outcomes = await withRetry(() => ensureStoreLayout(nc, store, { update: true }), {
      attempts: Infinity,
      budgetMs: 30_000,
      isPermanent: (e) => e instanceof FleetplanError,
      onRetry: (e, n, ms) => logger.warn("store_retry", { op: "store_init", attempt: n, retry_ms: ms, error: (e as Error).message }),
    }).catch((e: unknown) => {
      if (e instanceof FleetplanError) throw e;
      throw new FleetplanError("store_unavailable", `store init on ${describeStore(store)}: ${(e as Error).message}`, { cause: e });
    });
    const json = { ok: true, notify_prefix: store.notifyPrefix, buckets: outcomes };
    io.stdout(config.json ? `${JSON.stringify(json)}\n` : outcomes.map(line).join(""));
    return 0;
  } finally {
    await nc.close();
  }
};
