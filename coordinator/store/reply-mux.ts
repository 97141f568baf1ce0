// Many requests in flight on one connection, cheaper on the main thread than nats.js's request():
// that one builds up to three Errors (stack traces) and a timer per request, and its first publish
// of a burst is written to the socket alone. Here one subscription on a private inbox collects every
// reply by its subject's last token, one interval expires what waits too long, and the publishes
// made during one turn of the event loop go out in one socket write.
import { createInbox } from "@nats-io/transport-node";
import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/transport-node";

/** Requests answered through one shared reply subscription; `close` fails whatever still waits. */
export interface ReplyMux {
  /** The reply to `data` sent to `subject`, or a rejection made by `expired` once `deadline` (performance.now() ms) passed. */
  request(subject: string, data: Uint8Array, opts: { headers?: MsgHdrs; deadline: number; expired: () => Error }): Promise<Msg>;
  close(): void;
}

interface Waiting {
  subject: string;
  resolve: (msg: Msg) => void;
  reject: (error: Error) => void;
  deadline: number;
  expired: () => Error;
}

/** Open the mux on `nc`; replies go under `inboxPrefix` (the connection's own, so credentials that allow it allow these). */
export const createReplyMux = (nc: NatsConnection, inboxPrefix: string | undefined, sweepMs: number): ReplyMux => {
  const inbox = createInbox(inboxPrefix);
  const waiting = new Map<string, Waiting>();
  let outbox: { token: string; data: Uint8Array; headers: MsgHdrs | undefined }[] = [];
  let next = 0;
  const settle = (token: string, outcome: Msg | Error) => {
    const w = waiting.get(token);
    if (!w) return;
    waiting.delete(token);
    if (outcome instanceof Error) w.reject(outcome);
    else w.resolve(outcome);
  };
  const failAll = (error: Error) => {
    for (const token of [...waiting.keys()]) settle(token, error);
  };
  const sub = nc.subscribe(`${inbox}.*`, {
    callback: (error, msg) => {
      if (error) return failAll(error);
      const token = msg.subject.slice(inbox.length + 1);
      // No stream listens on the subject: the server answers 503 with no payload (nats.js's NoRespondersError).
      const none = msg.data.length === 0 && msg.headers?.code === 503;
      settle(token, none ? new Error(`no responders on ${waiting.get(token)?.subject}`) : msg);
    },
  });
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [token, w] of waiting) if (w.deadline <= now) settle(token, w.expired());
  }, sweepMs);
  sweep.unref();
  void nc.closed().then(() => failAll(new Error("the NATS connection closed")));

  // Everything requested in this turn of the event loop, in one write (nats.js flushes its buffer on a microtask).
  const flush = () => {
    const sending = outbox;
    outbox = [];
    for (const { token, data, headers } of sending) {
      const w = waiting.get(token);
      if (!w) continue;
      try {
        nc.publish(w.subject, data, { reply: `${inbox}.${token}`, ...(headers && { headers }) });
      } catch (error) {
        settle(token, error as Error);
      }
    }
  };

  return {
    request: (subject, data, { headers, deadline, expired }) =>
      new Promise<Msg>((resolve, reject) => {
        const token = (next++).toString(36);
        waiting.set(token, { subject, resolve, reject, deadline, expired });
        if (outbox.push({ token, data, headers }) === 1) setImmediate(flush);
      }),
    close: () => {
      clearInterval(sweep);
      sub.unsubscribe();
      failAll(new Error("the store was closed"));
    },
  };
};
