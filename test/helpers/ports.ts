export { freePort, waitListening } from "../../coordinator/demo/fleet.ts";

/** Poll `check` until it returns true or `ms` pass. */
export const waitFor = async (check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
};
