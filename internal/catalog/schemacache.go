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
