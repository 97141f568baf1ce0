#!/usr/bin/env node
// Entry point: registers tsx (resolved next to this file, so it works from any directory)
// and runs the TypeScript CLI directly, without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./cli/main.ts");
// Exit explicitly: a client library may keep a socket open after a failed connect.
process.exit(await main(process.argv.slice(2)));
