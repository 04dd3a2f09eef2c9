package kql

import (
	"slices"

	"custos/internal/store"
)

// Catalog resolves table names for the binder. It is declared here, where it
// is consumed; the workspace catalog and tests implement it. Implementations
// must be safe for concurrent use if the same Catalog serves several queries.
type Catalog interface {
	// Table returns the schema of the named table (case-sensitive, as in KQL),
	// system columns included, and whether the table exists.
	Table(name string) (store.Schema, bool)
}

// TableLister is implemented by catalogs that can list their tables; the
// binder uses it to expand wildcards such as union Perf*.
type TableLister interface {
	TableNames() []string
}

// MapCatalog is a Catalog backed by a map from table name to schema. It is
// safe for concurrent use as long as the map is not modified.
type MapCatalog map[string]store.Schema

// Table implements Catalog.
func (m MapCatalog) Table(name string) (store.Schema, bool) {
	s, ok := m[name]
	return s, ok
}

// TableNames implements TableLister, in sorted order.
func (m MapCatalog) TableNames() []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var (
	_ Catalog     = MapCatalog(nil)
	_ TableLister = MapCatalog(nil)
)
