// The agent's two NATS requests, neither of which needs a consumer, a bucket handle or any
// `$JS.API` permission beyond the direct get of its own key: read the key's last message, and
// put a status record by publishing to its key's subject and checking the JetStream PubAck.
import { Empty, RequestError, TimeoutError } from "@nats-io/transport-node";
import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { FleetplanError } from "../../shared/errors.ts";
import { directGetSubject, kvStream, kvSubject } from "../../shared/store-layout.ts";

/** A key's last message as a direct get answered it (`time`: server store time, unix ms). */
export type KeyRead = { found: false } | { found: true; seq: number; time: number; deleted: boolean; value: Uint8Array };

// No stream behind the subject answers nothing at all on nats-server 2.9.10 (a timeout); newer
// servers may answer "no responders". Either way the agent cannot tell a missing bucket from a
// JetStream that is down, so the message names both.
const bucketMissing = (bucket: string, timeoutMs: number, cause: unknown) =>
  new FleetplanError(
    "store_bucket_missing",
    `no answer from stream ${kvStream(bucket)} within ${timeoutMs} ms: bucket ${bucket} does not exist (create it with ` +
      "`fleetplan store init`) or JetStream is not running",
    { cause },
  );

const isSilence = (error: unknown): boolean =>
  error instanceof TimeoutError || (error instanceof RequestError && (error.isNoResponders() || error.cause instanceof TimeoutError));

/** Parse a direct-get reply: a 404 status is a missing key; a delete or purge marker carries `KV-Operation`. */
export const parseDirectGet = (reply: { headers?: MsgHdrs; data: Uint8Array }): KeyRead => {
  const h = reply.headers;
  if (h?.code === 404) return { found: false };
  const seq = Number(h?.get("Nats-Sequence"));
  const time = Date.parse(h?.get("Nats-Time-Stamp") ?? "");
  if (!h || !(seq > 0) || Number.isNaN(time)) {
    throw new FleetplanError("store_unavailable", `direct get failed: ${h?.code ?? "no headers"} ${h?.description ?? ""}`.trim());
  }
  const op = h.get("KV-Operation");
  return { found: true, seq, time, deleted: op === "DEL" || op === "PURGE", value: reply.data };
};

/** Read `key`'s last message from `bucket` with one request (store_bucket_missing when no stream answers). */
export const directGet = async (nc: NatsConnection, bucket: string, key: string, timeoutMs: number): Promise<KeyRead> => {
  try {
    return parseDirectGet(await nc.request(directGetSubject(bucket, key), Empty, { timeout: timeoutMs }));
  } catch (error) {
    if (isSilence(error)) throw bucketMissing(bucket, timeoutMs, error);
    if (error instanceof FleetplanError) throw error;
    throw new FleetplanError("store_unavailable", `direct get of ${key}: ${(error as Error).message}`, { cause: error });
  }
};

/** Parse a JetStream PubAck: the stored sequence, or the server's refusal as store_rejected. */
export const parsePubAck = (data: Uint8Array, subject: string): number => {
  let ack: { seq?: unknown; error?: { description?: string; err_code?: number } };
  try {
    ack = JSON.parse(new TextDecoder().decode(data)) as typeof ack;
  } catch {
    throw new FleetplanError("store_rejected", `put to ${subject}: the reply is not a JetStream PubAck`);
  }
  if (ack.error) {
    throw new FleetplanError("store_rejected", `put to ${subject}: ${ack.error.description ?? "refused"} (${ack.error.err_code ?? "?"})`);
  }
  if (typeof ack.seq !== "number") throw new FleetplanError("store_rejected", `put to ${subject}: the PubAck has no sequence`);
  return ack.seq;
};

/** Store `record` under `key` of `bucket` as a plain request to the key's subject; returns its sequence. */
export const putRecord = async (
  nc: NatsConnection,
  bucket: string,
  key: string,
  record: Uint8Array,
  timeoutMs: number,
): Promise<number> => {
  const subject = kvSubject(bucket, key);
  let reply: Msg;
  try {
    reply = await nc.request(subject, record, { timeout: timeoutMs });
  } catch (error) {
    if (error instanceof RequestError && error.isNoResponders()) throw bucketMissing(bucket, timeoutMs, error);
    if (isSilence(error)) throw new FleetplanError("store_timeout", `put to ${subject} timed out after ${timeoutMs} ms`, { cause: error });
    throw new FleetplanError("store_unavailable", `put to ${subject}: ${(error as Error).message}`, { cause: error });
  }
  return parsePubAck(reply.data, subject);
};
