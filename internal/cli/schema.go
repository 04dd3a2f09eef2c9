package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Column is one column of a table schema as the Tables API spells it.
type Column struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
}

// TableSpec is what `custos table create` sends: the schema plus optional
// retention and plan. Nil pointers and an empty plan are left to the server.
type TableSpec struct {
	Columns              []Column
	RetentionInDays      *int
	TotalRetentionInDays *int
	Plan                 string
}

// columnTypes maps accepted spellings (lower case) to the type name sent to
// the server. The Tables API's column types are string, int, long, real,
// boolean, dateTime, guid and dynamic; KQL spellings are accepted too.
var columnTypes = map[string]string{
	"string":   "string",
	"int":      "int",
	"long":     "long",
	"real":     "real",
	"double":   "real",
	"bool":     "boolean",
	"boolean":  "boolean",
	"datetime": "dateTime",
	"date":     "dateTime",
	"guid":     "guid",
	"uuid":     "guid",
	"dynamic":  "dynamic",
}

// ColumnTypeNames lists the column types accepted on the command line.
const ColumnTypeNames = "string, int, long, real, boolean, datetime, guid, dynamic"

// NormalizeColumnType returns the Tables API spelling of a column type given
// in any accepted spelling, case-insensitively.
func NormalizeColumnType(t string) (string, error) {
	n, ok := columnTypes[strings.ToLower(strings.TrimSpace(t))]
	if !ok {
		return "", fmt.Errorf("unknown column type %q (want one of %s)", t, ColumnTypeNames)
	}
	return n, nil
}

// ParseColumnFlag parses one --column value: "Name:type" or
// "Name:type:description".
func ParseColumnFlag(s string) (Column, error) {
	name, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Column{}, fmt.Errorf("column %q: want Name:type (types: %s)", s, ColumnTypeNames)
	}
	typ, desc, _ := strings.Cut(rest, ":")
	name = strings.TrimSpace(name)
	if name == "" {
		return Column{}, fmt.Errorf("column %q: empty name", s)
	}
	t, err := NormalizeColumnType(typ)
	if err != nil {
		return Column{}, fmt.Errorf("column %q: %w", name, err)
	}
	return Column{Name: name, Type: t, Description: strings.TrimSpace(desc)}, nil
}

// ParseColumnFlags parses repeated --column values and rejects duplicate
// names (compared case-insensitively, as KQL column names clash that way in
// Log Analytics).
func ParseColumnFlags(values []string) ([]Column, error) {
	cols := make([]Column, 0, len(values))
	seen := make(map[string]bool, len(values))
	for _, v := range values {
		c, err := ParseColumnFlag(v)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(c.Name)
		if seen[key] {
			return nil, fmt.Errorf("column %q given twice", c.Name)
		}
		seen[key] = true
		cols = append(cols, c)
	}
	return cols, nil
}

// ParseSchemaFile decodes a table schema file. Accepted shapes:
//   - an ARM table body: {"properties":{"schema":{"columns":[...]},"retentionInDays":N,...}}
//   - a schema object: {"name":"T_CL","columns":[...]}
//   - a bare column list: [{"name":"TimeGenerated","type":"datetime"}, ...]
//
// Column types are normalised as for --column.
func ParseSchemaFile(data []byte) (TableSpec, error) {
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if len(data) == 0 {
		return TableSpec{}, errors.New("schema file is empty")
	}
	var spec TableSpec
	var cols []Column
	switch data[0] {
	case '[':
		if err := json.Unmarshal(data, &cols); err != nil {
			return TableSpec{}, fmt.Errorf("schema file: %w", err)
		}
	case '{':
		var doc struct {
			Columns    []Column `json:"columns"`
			Properties *struct {
				Schema *struct {
					Columns []Column `json:"columns"`
				} `json:"schema"`
				RetentionInDays      *int   `json:"retentionInDays"`
				TotalRetentionInDays *int   `json:"totalRetentionInDays"`
				Plan                 string `json:"plan"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return TableSpec{}, fmt.Errorf("schema file: %w", err)
		}
		cols = doc.Columns
		if p := doc.Properties; p != nil {
			if p.Schema != nil {
				cols = p.Schema.Columns
			}
			spec.RetentionInDays, spec.TotalRetentionInDays, spec.Plan = p.RetentionInDays, p.TotalRetentionInDays, p.Plan
		}
	default:
		return TableSpec{}, errors.New("schema file: want a JSON object or array")
	}
	if len(cols) == 0 {
		return TableSpec{}, errors.New("schema file: no columns")
	}
	seen := make(map[string]bool, len(cols))
	for i := range cols {
		c := &cols[i]
		if c.Name == "" {
			return TableSpec{}, fmt.Errorf("schema file: column %d has no name", i+1)
		}
		t, err := NormalizeColumnType(c.Type)
		if err != nil {
			return TableSpec{}, fmt.Errorf("schema file: column %q: %w", c.Name, err)
		}
		c.Type = t
		key := strings.ToLower(c.Name)
		if seen[key] {
			return TableSpec{}, fmt.Errorf("schema file: column %q given twice", c.Name)
		}
		seen[key] = true
	}
	spec.Columns = cols
	return spec, nil
}
