// An agent status record for tests: an idle agent that applied nothing, with the fields a test cares about
// given. Whether a record is evidence is a matter of its signature (shared/status.ts), not of these fields.
import type { AgentStatus } from "../../shared/types.ts";

export const agentStatus = (over: Partial<AgentStatus> = {}): AgentStatus => ({
  host: "web-1",
  state: "idle",
  id: null,
  plan_hash: null,
  step_index: null,
  steps: null,
  since: 1,
  boot_time: 2,
  result: null,
  applied_id: null,
  applied_hash: null,
  applied_boot_time: null,
  version: "test",
  ...over,
});
