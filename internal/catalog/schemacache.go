package catalog

// Generation returns a counter that changes after every write this DB
// commits (tables, rules, workspaces, anything). Readers that cache what they
// read — the ingestion API caches rules and table schemas per request path —
// remember the generation they read under and treat their entry as stale
// once it differs. Read the generation before the data: a write that commits
// in between then makes the entry stale at once, never the other way round.
//
// It only sees writes made through this *DB; a catalog shared by several
// processes (PostgreSQL) needs a bounded cache lifetime as well.
func (c *DB) Generation() uint64 { return c.writes.Load() }

// GenerationSeesAllWrites reports whether Generation sees every write to the
// catalog, so that a reader's cache needs no lifetime bound besides it. True
// for SQLite: the catalog file is the server's alone (the data directory is
// locked by one server; the admin commands that open it only read), and every
// write goes through this DB's exec or transaction paths, which bump the
// counter. A catalog shared by several processes (PostgreSQL) would say false.
func (c *DB) GenerationSeesAllWrites() bool { return c.d.name() == "sqlite" }
