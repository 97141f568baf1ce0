import sodium from "libsodium-wrappers";

// libsodium-wrappers is a wasm module: every entry point awaits this once before use.
export const sodiumReady = async (): Promise<typeof sodium> => {
  await sodium.ready;
  return sodium;
};

export { sodium };
