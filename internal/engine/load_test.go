package engine

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// load is replaced by loading through the real store once it lands.
func (env *testEnv) load(t *testing.T, d *datadriven.TestData) string {
	d.Fatalf(t, "load needs the store")
	return ""
}
