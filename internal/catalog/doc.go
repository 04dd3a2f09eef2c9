// Package catalog is Custos's control-plane metadata store: tenants,
// subscriptions, resource groups, Log Analytics workspaces and their tables,
// data collection rules, service principals, token-signing keys and role
// assignments.
//
// It runs on SQLite (modernc.org/sqlite, pure Go) with versioned, embedded
// migrations, foreign keys on, WAL journaling and a busy timeout. Repositories
// write portable SQL with "?" placeholders; everything engine-specific (driver,
// DSN, placeholder style, constraint-error classification, migration files)
// sits behind the small dialect seam in dialect.go so that PostgreSQL can
// replace SQLite at scale.
//
// Resource IDs are ARM-shaped and compare case-insensitively: every row carries
// a lower-cased key next to the names as first written. Every write of a
// resource that has an ETag gets a new opaque one.
//
// *DB implements identity.Store and rbac.AssignmentStore. Errors implement
// api.Coded (an Azure error code plus a kind); catalog never knows HTTP status
// codes. It imports store (column types), identity and rbac (the store
// contracts it implements) and api (error kinds); it must not import arm, the
// server or any data-plane package.
package catalog
