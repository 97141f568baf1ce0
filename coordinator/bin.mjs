#!/usr/bin/env node
// Entry point: registers tsx (resolved next to this file, so it works from any directory)
// and runs the TypeScript CLI directly, without a build step.
import { register } from "tsx/esm/api";
import { runCli } from "../shared/run-cli.mjs";

register();
const { main } = await import("./cli/main.ts");
await runCli(main);
