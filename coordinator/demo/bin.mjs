#!/usr/bin/env node
// `npm run demo`: registers tsx (resolved next to this file) and runs the demo story.
import { register } from "tsx/esm/api";

register();
const { runDemo } = await import("./demo.ts");
process.exitCode = await runDemo();
