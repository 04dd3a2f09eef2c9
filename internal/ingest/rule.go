package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"custos/internal/catalog"
	"custos/internal/store"
)

// Rule is the part of a data collection rule (Microsoft.Insights/dataCollectionRules)
// that ingestion needs. It is a value: safe to share once built.
type Rule struct {
	ResourceID   string                  // ARM resource ID; the RBAC scope of ingestion
	ImmutableID  string                  // "dcr-" + 32 hex digits
	ETag         string                  // changes on every write; keys the transform cache
	Streams      map[string]store.Schema // streamDeclarations
	Destinations map[string]Destination  // destinations.logAnalytics by name
	DataFlows    []DataFlow
}

// Destination is one destinations.logAnalytics entry.
type Destination struct {
	Name                string
	WorkspaceResourceID string
	WorkspaceID         string // the workspace customerId; may be empty when only the resource ID is stored
}

// DataFlow is one dataFlows entry.
type DataFlow struct {
	Streams      []string
	Destinations []string
	TransformKQL string
	OutputStream string
}

// dcrBody is the wire shape of a rule; only the fields ingestion reads.
type dcrBody struct {
	ID         string        `json:"id"`
	Etag       string        `json:"etag"`
	Properties dcrProperties `json:"properties"`
}

type dcrProperties struct {
	ImmutableID        string `json:"immutableId"`
	StreamDeclarations map[string]struct {
		Columns []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"columns"`
	} `json:"streamDeclarations"`
	Destinations struct {
		LogAnalytics []struct {
			Name                string `json:"name"`
			WorkspaceResourceID string `json:"workspaceResourceId"`
			WorkspaceID         string `json:"workspaceId"`
		} `json:"logAnalytics"`
	} `json:"destinations"`
	DataFlows []struct {
		Streams      []string `json:"streams"`
		Destinations []string `json:"destinations"`
		TransformKQL string   `json:"transformKql"`
		OutputStream string   `json:"outputStream"`
	} `json:"dataFlows"`
}

// ParseRule builds a Rule from a data collection rule's ARM JSON: either the
// whole resource ({"id","etag","properties":{...}}) or only its properties
// object. resourceID and etag, when non-empty, override the body's.
func ParseRule(resourceID, etag string, body []byte) (*Rule, error) {
	var whole dcrBody
	if err := json.Unmarshal(body, &whole); err != nil {
		return nil, fmt.Errorf("parse data collection rule: %w", err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, fmt.Errorf("parse data collection rule: %w", err)
	}
	props := whole.Properties
	if _, ok := probe["properties"]; !ok {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&props); err != nil {
			return nil, fmt.Errorf("parse data collection rule properties: %w", err)
		}
	}
	r := &Rule{
		ResourceID:   whole.ID,
		ImmutableID:  props.ImmutableID,
		ETag:         whole.Etag,
		Streams:      make(map[string]store.Schema, len(props.StreamDeclarations)),
		Destinations: make(map[string]Destination, len(props.Destinations.LogAnalytics)),
	}
	if resourceID != "" {
		r.ResourceID = resourceID
	}
	if etag != "" {
		r.ETag = etag
	}
	for name, decl := range props.StreamDeclarations {
		schema := make(store.Schema, 0, len(decl.Columns))
		for _, c := range decl.Columns {
			t, ok := store.ParseColumnType(strings.ToLower(c.Type))
			if !ok {
				return nil, fmt.Errorf("stream %s: column %s: unknown type %q", name, c.Name, c.Type)
			}
			schema = append(schema, store.Column{Name: c.Name, Type: t})
		}
		r.Streams[name] = schema
	}
	for _, d := range props.Destinations.LogAnalytics {
		r.Destinations[d.Name] = Destination{Name: d.Name, WorkspaceResourceID: d.WorkspaceResourceID, WorkspaceID: d.WorkspaceID}
	}
	for _, f := range props.DataFlows {
		r.DataFlows = append(r.DataFlows, DataFlow{
			Streams: f.Streams, Destinations: f.Destinations,
			TransformKQL: f.TransformKQL, OutputStream: f.OutputStream,
		})
	}
	r.addBuiltinStreams()
	return r, nil
}

// addBuiltinStreams gives every undeclared stream that a data flow reads and
// that names a built-in table its schema (see builtinStreamSchema).
func (r *Rule) addBuiltinStreams() {
	for _, f := range r.DataFlows {
		for _, name := range f.Streams {
			if _, _, ok := r.stream(name); ok {
				continue
			}
			if schema, ok := builtinStreamSchema(name); ok {
				r.Streams[name] = schema
			}
		}
	}
}

// builtinStreamSchema returns the input schema of a stream of Azure's own
// data sources ("Microsoft-Syslog", "Microsoft-Perf", ...). Rules never
// declare these: the agent sends records shaped like the built-in table, plus
// _ResourceId, the resource the record comes from.
func builtinStreamSchema(stream string) (store.Schema, bool) {
	const prefix = "Microsoft-"
	if len(stream) <= len(prefix) || !strings.EqualFold(stream[:len(prefix)], prefix) {
		return nil, false
	}
	schema, ok := catalog.StandardTableSchema(stream[len(prefix):])
	if !ok {
		return nil, false
	}
	if schema.Index(store.ColResourceID) < 0 {
		schema = append(schema, store.Column{Name: store.ColResourceID, Type: store.TypeString})
	}
	return schema, true
}

// stream returns the declared schema of a stream; stream names compare
// case-insensitively, as Azure's do.
func (r *Rule) stream(name string) (string, store.Schema, bool) {
	if s, ok := r.Streams[name]; ok {
		return name, s, true
	}
	for k, s := range r.Streams {
		if strings.EqualFold(k, name) {
			return k, s, true
		}
	}
	return "", nil, false
}

// flowsFor returns the indexes of the data flows that consume stream.
func (r *Rule) flowsFor(stream string) []int {
	var out []int
	for i, f := range r.DataFlows {
		for _, s := range f.Streams {
			if strings.EqualFold(s, stream) {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// OutputTable returns the table a data flow writes: outputStream
// "Custom-MyTable_CL" → "MyTable_CL", "Microsoft-Syslog" → "Syslog"; without an
// outputStream the input stream names the table the same way.
func OutputTable(outputStream, inputStream string) string {
	s := outputStream
	if s == "" {
		s = inputStream
	}
	for _, p := range []string{"Custom-", "Microsoft-"} {
		if len(s) > len(p) && strings.EqualFold(s[:len(p)], p) {
			return s[len(p):]
		}
	}
	return s
}
