package store

import (
	"fmt"
	"unicode/utf8"
)

// System columns the store adds to, and owns on, every table.
const (
	ColTimeGenerated = "TimeGenerated" // datetime; a null is set to _TimeReceived
	ColTimeReceived  = "_TimeReceived" // datetime; set at commit
	ColItemID        = "_ItemId"       // string; a generated GUID per row
	ColResourceID    = "_ResourceId"   // string; from the batch
	ColTenantID      = "TenantId"      // string; virtual: the workspace ID
	ColType          = "Type"          // string; virtual: the table name
)

// systemColumns lists the system columns appended to a table's schema when the
// declared schema lacks them, in this order (TimeGenerated goes first instead).
var systemColumns = [...]Column{
	{ColTenantID, TypeString},
	{ColType, TypeString},
	{ColResourceID, TypeString},
	{ColItemID, TypeString},
	{ColTimeReceived, TypeDatetime},
}

func systemType(name string) (ColumnType, bool) {
	if name == ColTimeGenerated {
		return TypeDatetime, true
	}
	for _, c := range systemColumns {
		if c.Name == name {
			return c.Type, true
		}
	}
	return TypeInvalid, false
}

// isVirtual reports whether a column is computed at query time, not stored.
func isVirtual(name string) bool { return name == ColTenantID || name == ColType }

// isStoreOwned reports whether the store sets the column itself and ignores
// values that a batch supplies for it.
func isStoreOwned(name string) bool {
	return isVirtual(name) || name == ColItemID || name == ColTimeReceived
}

// fullSchema returns the schema queries see: TimeGenerated first if the
// declared columns lack it, the declared columns, then missing system columns.
func fullSchema(declared Schema) Schema {
	out := make(Schema, 0, len(declared)+6)
	if declared.Index(ColTimeGenerated) < 0 {
		out = append(out, Column{ColTimeGenerated, TypeDatetime})
	}
	out = append(out, declared...)
	for _, c := range systemColumns {
		if declared.Index(c.Name) < 0 {
			out = append(out, c)
		}
	}
	return out
}

// storageSchema is the full schema without the virtual columns.
func storageSchema(full Schema) Schema {
	out := make(Schema, 0, len(full))
	for _, c := range full {
		if !isVirtual(c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// validWorkspaceID accepts what is safe as a directory name: 1-128 ASCII
// letters, digits, '-', '_' or '.', not starting with '.'.
func validWorkspaceID(id string) error {
	if len(id) == 0 || len(id) > 128 || id[0] == '.' {
		return fmt.Errorf("%w: workspace ID %q", ErrInvalidName, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isTokenByte(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%w: workspace ID %q", ErrInvalidName, id)
		}
	}
	return nil
}

// validTableName accepts Azure Monitor table names: a letter or '_' then
// letters, digits and '_', at most 255 bytes.
func validTableName(name string) error {
	if len(name) == 0 || len(name) > 255 {
		return fmt.Errorf("%w: table name %q", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("%w: table name %q", ErrInvalidName, name)
		}
	}
	return nil
}

func validColumnName(name string) error {
	if len(name) == 0 || len(name) > 1024 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: column name %q", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 {
			return fmt.Errorf("%w: column name %q", ErrInvalidName, name)
		}
	}
	return nil
}

// mergeDeclared validates a declared schema and merges it into the existing
// declared columns: columns keep their types, new ones are appended.
func mergeDeclared(existing, declared Schema) (Schema, bool, error) {
	seen := make(map[string]bool, len(declared))
	out := append(Schema(nil), existing...)
	changed := false
	for _, c := range declared {
		if err := validColumnName(c.Name); err != nil {
			return nil, false, err
		}
		if c.Type == TypeInvalid || int(c.Type) >= len(typeNames) {
			return nil, false, fmt.Errorf("%w: column %s has invalid type", ErrSchema, c.Name)
		}
		if seen[c.Name] {
			return nil, false, fmt.Errorf("%w: duplicate column %s", ErrSchema, c.Name)
		}
		seen[c.Name] = true
		if st, ok := systemType(c.Name); ok && st != c.Type {
			return nil, false, fmt.Errorf("%w: system column %s must be %s, not %s", ErrSchema, c.Name, st, c.Type)
		}
		if i := out.Index(c.Name); i >= 0 {
			if out[i].Type != c.Type {
				return nil, false, fmt.Errorf("%w: column %s is %s, cannot become %s", ErrSchema, c.Name, out[i].Type, c.Type)
			}
			continue
		}
		full := fullSchema(out)
		if i := full.Index(c.Name); i >= 0 { // an implicit system column declared later
			continue
		}
		out = append(out, c)
		changed = true
	}
	return out, changed, nil
}
