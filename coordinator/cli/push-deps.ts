// The parts of push()'s dependencies that every coordinator command which pushes builds alike (push, rollout, approve,
// push --stage), so the operator name, SSH delivery, convergence check and store lifetime cannot drift apart.
import { userInfo } from "node:os";
import type { Logger } from "../../shared/log.ts";
import type { PlanStore } from "../../shared/types.ts";
import { describeStore } from "../../shared/store-config.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import { targetStates } from "../decide.ts";
import type { TargetStates } from "../decide.ts";
import type { PushDeps } from "../push.ts";
import { openStore } from "../store/select.ts";
import { createSshDelivery } from "../store/ssh.ts";
import { fleetStatus } from "./status.ts";

/** The flags that say how SSH delivery reaches a host. */
export interface SshFlags {
  "ssh-config"?: string | undefined;
  "remote-agent"?: string | undefined;
}

/** This coordinator's store name, clock, operator and SSH delivery, as every CLI push records and delivers them. */
export const commonPushDeps = (
  config: CoordinatorConfig,
  logger: Logger,
  flags: SshFlags,
): Pick<PushDeps, "logger" | "storeName" | "now" | "operator" | "deliverSsh"> => ({
  logger,
  storeName: describeStore(config.store),
  now: () => new Date(),
  operator: userInfo().username,
  deliverSsh: createSshDelivery({
    logger,
    ...(flags["ssh-config"] && { configFile: flags["ssh-config"] }),
    ...(flags["remote-agent"] && { remoteAgent: flags["remote-agent"] }),
  }),
});

/** Which targets converged (or drifted) right now, read from metrics no older than `maxAgeMs`: what push skips on. */
export const convergedStates =
  (db: CoordinatorDb, maxAgeMs: number, prometheus: string | null | undefined) =>
  async (servers: ServerRow[]): Promise<TargetStates> =>
    targetStates(await fleetStatus(db, servers, { maxAgeMs, ...(prometheus && { prometheus }) }));

/** The store opened on first use and closed once at the end: a dry run or an SSH-only push never connects. */
export const lazyStore = (config: CoordinatorConfig, logger: Logger) => {
  let store: Promise<PlanStore> | null = null;
  return {
    open: (): Promise<PlanStore> => (store ??= openStore(config.store, logger)),
    close: async (): Promise<void> => {
      if (store) await (await store.catch(() => null))?.close();
    },
  };
};
