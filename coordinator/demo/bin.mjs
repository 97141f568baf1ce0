#!/usr/bin/env node
// `npm run demo`: runs the compiled demo story from dist/ (built by .ci/setup), which starts the built bins.
import { importBuilt } from "../../shared/built.mjs";

const { runDemo } = await importBuilt("coordinator/demo/demo.js");
process.exitCode = await runDemo();
