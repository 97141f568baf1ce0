#!/usr/bin/env node
// Entry point: runs the compiled coordinator CLI from dist/ (`npm run build`), no TypeScript at run time.
import { importBuilt } from "../shared/built.mjs";
import { runCli } from "../shared/run-cli.mjs";

const { main } = await importBuilt("coordinator/cli/main.js");
await runCli(main);
