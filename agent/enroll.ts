// `fleetplan-agent enroll`: a new node announces itself (node public line, hostname, version,
// facts) to the enrollment bucket/prefix with the shared bootstrap credential, which may only
// write there. The operator accepts it with `fleetplan server accept HOST`.
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { arch, hostname as osHostname, release, type as osType } from "node:os";
import { connect } from "@nats-io/transport-node";
import { createConsulClient, exchange } from "../shared/consul-client.ts";
import { kvPutRequest, parseKvWrite } from "../shared/consul-kv.ts";
import { consulTransport } from "../shared/consul-transport.ts";
import { CONSUL_ENROLL_PREFIX, ENROLL_BUCKET, ENROLL_INBOX_PREFIX, MAX_ENROLLMENT_BYTES } from "../shared/enrollment.ts";
import type { Announcement, EnrollFacts } from "../shared/enrollment.ts";
import { FleetplanError } from "../shared/errors.ts";
import { readPrivateBytes, readPrivateFile } from "../shared/files.ts";
import { formatNodePublic } from "../shared/keys.ts";
import { natsConnectOptions } from "../shared/nats-options.ts";
import type { NodeKeyPair, StoreConfig } from "../shared/types.ts";
import { VERSION } from "../shared/version.ts";
import { readBootTime } from "./boot-time.ts";
import { putRecord } from "./store/nats-direct.ts";

/** The distribution's PRETTY_NAME from os-release (else the kernel's name): what the operator reads in `server pending`. */
const readOsName = (osRelease = "/etc/os-release"): string => {
  try {
    const match = /^PRETTY_NAME=("?)(.*)\1$/m.exec(readFileSync(osRelease, "utf8"));
    if (match?.[2]) return match[2].slice(0, 200);
  } catch {
    // No os-release (containers, other systems): the kernel's name says enough.
  }
  return osType();
};

/** This machine's facts, as the announcement carries them. */
export const enrollmentFacts = (procStat?: string): EnrollFacts => ({
  os: readOsName(),
  kernel: release().slice(0, 200),
  boot_time: readBootTime(procStat),
  arch: arch(),
});

/** The announcement for `host` with this node's keys (pure apart from `facts`). */
export const buildAnnouncement = (host: string, keys: NodeKeyPair, facts: EnrollFacts, now: number): Announcement => ({
  host,
  node_key: formatNodePublic(keys.publicKey, keys.identity.publicKey),
  hostname: osHostname().slice(0, 200),
  version: VERSION,
  facts,
  issued: now,
});

// The bootstrap credential replaces any other store credential of the agent's config.
const bootstrapStore = (store: StoreConfig, credsFile: string): StoreConfig => {
  const { user: _user, pass: _pass, token: _token, credsFile: _creds, ...rest } = store;
  return { ...rest, credsFile, inboxPrefix: ENROLL_INBOX_PREFIX };
};

const putNats = async (store: StoreConfig, credsFile: string, host: string, record: Uint8Array): Promise<number> => {
  const config = bootstrapStore(store, credsFile);
  const nc = await connect(natsConnectOptions(config, { name: `fleetplan-enroll-${host}`, forever: false })).catch((e: unknown) => {
    throw new FleetplanError("store_unavailable", `NATS at ${store.servers.join(",")}: ${(e as Error).message}`, { cause: e });
  });
  try {
    return await putRecord(nc, ENROLL_BUCKET, host, record, store.timeoutMs);
  } finally {
    await nc.close();
  }
};

const putConsul = async (store: StoreConfig, tokenFile: string, host: string, record: Uint8Array): Promise<number> => {
  const token = readPrivateFile(tokenFile, "Consul bootstrap token file").trim();
  if (token === "") {
    throw new FleetplanError("invalid_argument", `--bootstrap-creds: ${tokenFile} is empty; put the Consul bootstrap ACL token in it`);
  }
  const config = { ...store, token };
  const files = { http, https, readFile: readFileSync, readPrivateFile: (path: string) => readPrivateBytes(path, "TLS key") };
  const { client, close } = createConsulClient(config, { attempts: 3 }, consulTransport(config, files).send);
  try {
    const key = CONSUL_ENROLL_PREFIX + host;
    await exchange(client, kvPutRequest(config, key, record, `announcement of ${host}`, MAX_ENROLLMENT_BYTES), parseKvWrite);
    return 0;
  } finally {
    close();
  }
};

/** Put the signed announcement under its host's key with the bootstrap credential; the NATS sequence (0 on Consul). */
export const putAnnouncement = (store: StoreConfig, credsFile: string, host: string, record: Uint8Array): Promise<number> =>
  store.kind === "consul" ? putConsul(store, credsFile, host, record) : putNats(store, credsFile, host, record);
