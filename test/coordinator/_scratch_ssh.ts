import { execa } from "execa";
const r = await execa("ssh-nonexistent-x", ["a"], { input: "x", reject: false, env: {} });
console.log(r.exitCode, r.failed, r.code, r.originalMessage, "|", r.shortMessage, "|", JSON.stringify(r.stderr), r.signal);
