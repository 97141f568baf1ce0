import { describeFailure, requestText } from "../metrics-http.ts";

// Gates: PromQL queries that must hold after each wave. A gate passes only on a non-empty
// answer whose every sample is non-zero; an empty answer, a zero, an error or an unreachable
// Prometheus pauses the rollout (it never passes, and never aborts on its own).

export interface GateVerdict {
  query: string;
  pass: boolean;
  /** Why it passed or did not, for people: printed and stored as the pause reason. */
  why: string;
}

const MAX_GATE_BYTES = 4 * 1024 * 1024;
const GATE_TIMEOUT_MS = 10_000;

type Sample = [number, string];

/** The verdict on one `/api/v1/query` answer (parsed JSON), pure. */
export const gateVerdict = (query: string, doc: unknown): GateVerdict => {
  const fail = (why: string): GateVerdict => ({ query, pass: false, why: `gate ${JSON.stringify(query)}: ${why}` });
  const body = doc as { status?: string; error?: string; data?: { resultType?: string; result?: unknown } } | null;
  if (body?.status !== "success") return fail(`Prometheus answered ${body?.status ?? "nothing"}${body?.error ? ` (${body.error})` : ""}`);
  const { resultType, result } = body.data ?? {};
  let samples: Sample[];
  if (resultType === "scalar") samples = [result as Sample];
  else if (resultType === "vector" && Array.isArray(result)) samples = result.map((r) => (r as { value: Sample }).value);
  else return fail(`result type ${resultType ?? "missing"} is not an instant vector or scalar`);
  if (samples.length === 0) return fail("empty result (no series matched): an empty answer never passes");
  const zero = samples.filter((s) => !Array.isArray(s) || Number(s[1]) === 0 || Number.isNaN(Number(s[1])));
  if (zero.length > 0) return fail(`${zero.length} of ${samples.length} sample(s) are zero or not a number`);
  return { query, pass: true, why: `gate ${JSON.stringify(query)}: ${samples.length} sample(s), all true` };
};

/** Evaluate one gate through the Prometheus HTTP API at `baseUrl`; never throws (unreachable is a failed verdict). */
export const evaluateGate = async (baseUrl: string, query: string): Promise<GateVerdict> => {
  const url = new URL("api/v1/query", baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
  let text: string;
  try {
    const form = new URLSearchParams({ query });
    text = await requestText(url.toString(), { timeoutMs: GATE_TIMEOUT_MS, maxBytes: MAX_GATE_BYTES, form, accept: "application/json" });
  } catch (error) {
    // A 400 carries Prometheus' own explanation (a PromQL syntax error) in the body, which requestText drops.
    const why = `Prometheus at ${baseUrl} unreachable or refused the query (${describeFailure(error)})`;
    return { query, pass: false, why: `gate ${JSON.stringify(query)}: ${why}` };
  }
  try {
    return gateVerdict(query, JSON.parse(text));
  } catch {
    return { query, pass: false, why: `gate ${JSON.stringify(query)}: Prometheus answered with something that is not JSON` };
  }
};
