// Child process for db.test.ts: issue N ids for one host from its own connection, print them.
import { openCoordinatorDb } from "../../coordinator/db.ts";

const [path, host, count, startAt] = process.argv.slice(2);
const db = openCoordinatorDb(path!);
// Both children start issuing at the same instant, so their transactions really overlap.
while (Date.now() < Number(startAt));
const fixed = new Date("2025-03-07T09:05:01Z");
const ids: number[] = [];
for (let i = 0; i < Number(count); i++) ids.push(db.issueId(host!, fixed));
db.close();
process.stdout.write(JSON.stringify(ids));
