package kql

import (
	"sync"

	"custos/internal/store"
)

// PartitionKey is the key of the current partition inside the subquery of
// "partition hint.strategy=legacy by Col { SubQueryWithSource }", where
// the subquery names the key as toscalar(Col) (or Col). The executor sets
// the slot before it runs the subquery for each partition.
type PartitionKey struct {
	Name string
	T    Type
	Slot *KeySlot
}

// Type implements Scalar.
func (p *PartitionKey) Type() Type { return p.T }

func (p *PartitionKey) String() string { return "partition_key(" + QuoteName(p.Name) + ")" }

// KeySlot holds the key value of the partition being run. Safe for
// concurrent use.
type KeySlot struct {
	mu sync.Mutex
	v  Value
}

// Set stores the key of the next partition.
func (s *KeySlot) Set(v Value) {
	s.mu.Lock()
	s.v = v
	s.mu.Unlock()
}

// Get returns the key of the current partition (null of type t before the
// first Set).
func (s *KeySlot) Get(t store.ColumnType) Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v.Type == store.TypeInvalid {
		return NullValue(t)
	}
	return s.v
}
