import { execFileSync } from "node:child_process";
import { startSshd } from "../helpers/sshd.ts";
const t0 = Date.now();
const s = await startSshd();
console.log("started", Date.now() - t0);
try {
  console.log(execFileSync("ssh", ["-F", s.clientConfig, "-p", String(s.port), "root@127.0.0.1", "echo hi; which node; echo $PATH"]).toString());
} catch (e) { console.log("fail", (e as any).stderr?.toString(), s.log()); }
await s.stop();
console.log("done", Date.now() - t0);
