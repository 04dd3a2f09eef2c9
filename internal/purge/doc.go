// Package purge implements the purge API (POST .../workspaces/{ws}/purge)
// and the delete-data API (POST .../tables/{t}/deleteData): request
// decoding, filters compiled to a store.RowPredicate, an operation queue
// persisted in the catalog (filters sealed by the platform key), one worker
// that runs pending operations through (*store.DB).Purge in order and resumes
// them after a restart, per-workspace rate limits, and operation status.
//
// It imports store, catalog and api; it must not import arm or server (arm
// serves its handlers, the server starts and stops its worker).
package purge
