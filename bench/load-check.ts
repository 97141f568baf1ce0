// The load test's verdict on one agent, as a pure function of what its ledger and marker file
// hold. Agents are newest-wins: ids may be skipped (superseded, or replaced before they were
// read) but never run out of order or twice, and the last pushed id must be applied.

/** What one agent recorded: ledger rows in acceptance order, and ids in the order they executed. */
export interface AgentRecord {
  host: string;
  runs: readonly { id: number; state: string }[];
  executed: readonly number[];
}

// Each value above the one before it: no repeats, never an older id after a newer one.
const strictlyIncreasing = (ids: readonly number[]): boolean => ids.every((id, i) => i === 0 || id > ids[i - 1]!);

/** Every way `record` breaks newest-wins for pushes 1..last, one line each, prefixed with the host; [] when all is well. */
export const checkAgent = (record: AgentRecord, last: number): string[] => {
  const problems: string[] = [];
  const accepted = record.runs.map((r) => r.id);
  const applied = record.runs.filter((r) => r.state === "succeeded").map((r) => r.id);
  // A run still going (the deadline passed) may or may not have executed yet.
  const running = record.runs.at(-1)?.state === "running" ? record.runs.at(-1)!.id : null;
  const executedApplied = running !== null && record.executed.at(-1) === running ? record.executed.slice(0, -1) : record.executed;
  if (!strictlyIncreasing(record.executed)) {
    problems.push(`ran ids [${record.executed}] in that order; want strictly increasing (never an older id after a newer one, none twice)`);
  }
  if (!strictlyIncreasing(accepted)) problems.push(`ledger accepted ids [${accepted}]; want strictly increasing`);
  if (executedApplied.join() !== applied.join()) {
    problems.push(`executions [${record.executed}] differ from the ledger's applied runs [${applied}]`);
  }
  const odd = record.runs.filter((r) => r.state !== "succeeded" && r.state !== "superseded" && r.id !== running && r.id !== last);
  if (odd.length > 0) problems.push(`runs neither applied nor superseded: ${odd.map((r) => `${r.id}:${r.state}`).join(", ")}`);
  if (applied.at(-1) !== last) {
    const newest = record.runs.at(-1);
    const newestText = newest ? `${newest.id} (${newest.state})` : "none";
    const seen = newest?.id === last ? `its run is ${newest.state}` : `newest accepted: ${newestText}`;
    problems.push(`last pushed id ${last} not applied (${seen}; applied [${applied}])`);
  }
  return problems.map((p) => `${record.host}: ${p}`);
};
