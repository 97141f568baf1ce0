import type { CliIo } from "../shared/cli.ts";
import type { PushEvent } from "./push.ts";

const BAR = 24;
/** How often a TTY progress line is redrawn without events, so it never looks frozen. */
const REDRAW_MS = 1_000;

/** `  (reason: message)` of a target or event for text output, so a failure says why; empty when neither is set. */
export const outcomeDetail = (t: { reason: string | null; message: string | null }): string => {
  const text = [t.reason, t.message].filter(Boolean).join(": ");
  return text ? `  (${text})` : "";
};

/**
 * Push progress for people: on a TTY one redrawn line with a bar and per-state counts;
 * redrawn every second even without events; otherwise one line per target outcome. `--json` bypasses this (one object per event). `label`
 * (e.g. `wave 2/4` in a rollout) starts every line.
 */
export const createProgress = (io: CliIo, total: number, tty: boolean, started = Date.now(), label = "", redrawMs = REDRAW_MS) => {
  const prefix = label ? `${label} ` : "";
  const states = new Map<string, string>();
  const pushed = new Map<string, number>();
  let lastDraw = 0;
  let refused = 0;
  const draw = (force = false) => {
    if (!tty || (!force && Date.now() - lastDraw < 100)) return;
    lastDraw = Date.now();
    const counts = new Map<string, number>();
    for (const s of states.values()) counts.set(s, (counts.get(s) ?? 0) + 1);
    const done = [
      "succeeded",
      "failed",
      "rejected",
      "interrupted",
      "timeout",
      "wait_interrupted",
      "put_failed",
      "ssh_failed",
      "superseded",
      "skipped",
    ].reduce((n, k) => n + (counts.get(k) ?? 0), 0);
    const filled = total === 0 ? BAR : Math.round((done / total) * BAR);
    const parts = [...counts, ...(refused > 0 ? [["refused records", refused] as const] : [])].map(([k, v]) => `${k} ${v}`).join(" · ");
    io.stderr(
      `\r\x1b[2K${prefix}[${"#".repeat(filled)}${".".repeat(BAR - filled)}] ${done}/${total}  ${parts}  ${((Date.now() - started) / 1000).toFixed(1)}s`,
    );
  };
  // The clock and counts move on while a step runs and no event arrives: redraw on a timer (a TTY only).
  const timer = tty ? setInterval(() => draw(true), redrawMs) : null;
  timer?.unref();
  return {
    onEvent(e: PushEvent): void {
      if (e.event === "plan") {
        states.set(e.host, e.action === "skip" ? "skipped" : "sealing");
        if (e.id !== null) pushed.set(e.host, e.id);
      } else if (e.event === "status") {
        // A status about an earlier id means the agent has not picked the new one up yet.
        const step = e.state === "running" && e.step_index !== null && e.steps !== null ? ` step ${e.step_index + 1}/${e.steps}` : "";
        states.set(e.host, e.id === pushed.get(e.host) ? `${e.state}${step}` : "waiting");
      } else if (e.event === "status_refused") {
        // Never progress, never an outcome: said once per record so a forgery attempt is seen.
        refused++;
        const claims = e.claimed_host && e.claimed_host !== e.host ? `, claims ${e.claimed_host}` : "";
        if (!tty) io.stderr(`${prefix}${e.host}: status record refused (${e.reason}${claims})\n`);
      } else states.set(e.host, e.outcome);
      if (!tty && (e.event === "final" || e.event === "put_failed" || e.event === "delivered")) {
        io.stderr(`${prefix}${e.host}: ${e.outcome}${e.id ? ` id ${e.id}` : ""}${outcomeDetail(e)}\n`);
      }
      draw(e.event === "final");
    },
    end(): void {
      if (timer) clearInterval(timer);
      draw(true);
      if (tty) io.stderr("\n");
    },
  };
};
