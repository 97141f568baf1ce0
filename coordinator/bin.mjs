#!/usr/bin/env node
// Entry point: registers tsx (resolved next to this file, so it works from any directory)
// and runs the TypeScript CLI directly, without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
