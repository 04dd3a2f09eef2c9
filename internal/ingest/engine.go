package ingest

import (
	"custos/internal/engine"
	"custos/internal/store"
)

// EngineTransforms compiles a transformKql with the KQL engine; it is the
// default CompileFunc.
func EngineTransforms(src string, input store.Schema) (Transform, error) {
	t, err := engine.CompileTransform(src, input)
	if err != nil {
		return nil, err
	}
	return t, nil
}

var _ CompileFunc = EngineTransforms
