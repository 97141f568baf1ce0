// The trust versions this coordinator published or read, kept in its database (trusted, unlike the
// store): whoever can write the store could delete the newest versions, and the next rotation would
// then be built on an older set, carrying a removed key back. Table: the `trust_versions` migration.
import type Database from "better-sqlite3";

/** Schema step (appended to MIGRATIONS): every trust record seen, by version, as stored. */
export const trustVersionsMigration = (db: Database.Database): void =>
  void db.exec(`
    CREATE TABLE trust_versions (
      version INTEGER PRIMARY KEY CHECK (version > 0),
      record  BLOB NOT NULL,
      seen_at INTEGER NOT NULL
    ) STRICT;
  `);

/** One stored trust record by version. */
export interface KnownVersion {
  version: number;
  bytes: Uint8Array;
}

/** Trust-version queries over an open coordinator database (migrated by openCoordinatorDb). */
export const openTrustDb = (db: Database.Database) => {
  const q = {
    all: db.prepare("SELECT version, record FROM trust_versions ORDER BY version"),
    add: db.prepare("INSERT OR IGNORE INTO trust_versions (version, record, seen_at) VALUES (?, ?, ?)"),
  };
  const remember = db.transaction((versions: KnownVersion[], at: number) => {
    for (const v of versions) q.add.run(v.version, v.bytes, at);
  });
  return {
    /** Every version this database knows, oldest first. */
    known: (): KnownVersion[] =>
      (q.all.all() as { version: number; record: Buffer }[]).map((r) => ({ version: r.version, bytes: new Uint8Array(r.record) })),
    /** Keep versions read or published; a version already known keeps its first record. */
    remember: (versions: KnownVersion[], at: number): void => remember.immediate(versions, at),
  };
};
