// Child process of push-batches.test.ts: push to every server of the database at DB_PATH through
// NATS_URL at the fixed time NOW_MS, printing one line per put, until the parent kills it (-9).
import { sodiumReady } from "../../shared/sodium.ts";
import { openCoordinatorDb, pushAll } from "./push-batches-fixture.ts";

const [dbPath, natsUrl, nowMs] = process.argv.slice(2);
await sodiumReady();
const db = openCoordinatorDb(dbPath!);
await pushAll(db, natsUrl!, new Date(Number(nowMs)), { emit: (e) => e.event === "put" && process.stdout.write(`put ${e.host} ${e.id}\n`) });
process.stdout.write("done\n");
