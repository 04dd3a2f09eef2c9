package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// TypeSavedSearch is the ARM type of a workspace saved search.
const TypeSavedSearch = "Microsoft.OperationalInsights/workspaces/savedSearches"

// MaxSavedSearchesPerWorkspace bounds the saved searches of one workspace.
const MaxSavedSearchesPerWorkspace = 1000

// SavedSearch is a Microsoft.OperationalInsights/workspaces/savedSearches
// resource. Its query is customer content: the catalog stores it only sealed
// under the workspace key (QuerySealed, sealed by the caller with
// SavedSearchAAD), never in plaintext. With a FunctionAlias it is a
// workspace function that queries call by that name, with
// FunctionParameters ("a:long, b:string = 'x'").
type SavedSearch struct {
	Workspace          Workspace
	Name               string
	Category           string
	DisplayName        string
	QuerySealed        []byte
	FunctionAlias      string
	FunctionParameters string
	Tags               []SavedSearchTag
	Version            int64
	ETag               string
	Audit              Audit
}

// SavedSearchTag is one {name, value} tag of a saved search.
type SavedSearchTag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ID returns the saved search's resource ID.
func (s *SavedSearch) ID() string { return s.Workspace.ID() + "/savedSearches/" + s.Name }

// SavedSearchAAD is the additional authenticated data a saved search's
// query is sealed with: it binds the ciphertext to the saved search's name
// (the workspace is bound by the sealing itself).
func SavedSearchAAD(name string) []byte {
	return []byte("custos/savedsearch/v1/" + strings.ToLower(name))
}

var (
	savedSearchNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-|]{0,254}$`)
	// A function alias must be a KQL identifier.
	functionAliasRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// Limits on saved search properties.
const (
	maxSavedSearchText  = 256
	maxFunctionParams   = 4096
	maxSavedSearchTags  = 50
	maxSavedSearchQuery = 256 << 10 // sealed bytes
)

func validateSavedSearch(s *SavedSearch) error {
	if !savedSearchNameRE.MatchString(s.Name) {
		return Invalid("InvalidResourceName", "name",
			"The saved search name '%s' is invalid: use 1 to 255 letters, digits, '_', '-', '.' and '|', starting with a letter or digit.",
			truncate(s.Name, 100))
	}
	if strings.TrimSpace(s.Category) == "" || len(s.Category) > maxSavedSearchText {
		return Invalid("InvalidParameter", "properties.category", "The property 'category' is required (at most %d characters).", maxSavedSearchText)
	}
	if strings.TrimSpace(s.DisplayName) == "" || len(s.DisplayName) > maxSavedSearchText {
		return Invalid("InvalidParameter", "properties.displayName", "The property 'displayName' is required (at most %d characters).", maxSavedSearchText)
	}
	if len(s.QuerySealed) == 0 {
		return Invalid("InvalidParameter", "properties.query", "The property 'query' is required.")
	}
	if len(s.QuerySealed) > maxSavedSearchQuery {
		return Invalid("InvalidParameter", "properties.query", "The query is too long.")
	}
	if s.FunctionAlias != "" && !functionAliasRE.MatchString(s.FunctionAlias) {
		return Invalid("InvalidParameter", "properties.functionAlias",
			"The function alias '%s' is invalid: use a name of letters, digits and '_' that does not start with a digit.", truncate(s.FunctionAlias, 100))
	}
	if s.FunctionAlias == "" && s.FunctionParameters != "" {
		return Invalid("InvalidParameter", "properties.functionParameters", "'functionParameters' needs a 'functionAlias'.")
	}
	if len(s.FunctionParameters) > maxFunctionParams {
		return Invalid("InvalidParameter", "properties.functionParameters", "'functionParameters' is too long.")
	}
	if len(s.Tags) > maxSavedSearchTags {
		return Invalid("InvalidParameter", "properties.tags", "A saved search has at most %d tags.", maxSavedSearchTags)
	}
	return nil
}

const savedSearchColumns = `x.name, x.category, x.display_name, x.query_sealed, x.function_alias, x.function_parameters,
	x.tags, x.version, x.etag, x.created_at, x.created_by, x.created_by_type, x.modified_at, x.modified_by, x.modified_by_type, ` + workspaceColumns

const savedSearchFrom = ` FROM saved_searches x JOIN workspaces w ON w.ws_key = x.ws_key JOIN resource_groups g ON g.rg_key = w.rg_key
	JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanSavedSearch(sc interface{ Scan(...any) error }) (SavedSearch, error) {
	var s SavedSearch
	var tags, created, modified string
	dst := []any{&s.Name, &s.Category, &s.DisplayName, &s.QuerySealed, &s.FunctionAlias, &s.FunctionParameters,
		&tags, &s.Version, &s.ETag, &created, &s.Audit.CreatedBy, &s.Audit.CreatedByType, &modified, &s.Audit.ModifiedBy, &s.Audit.ModifiedByType}
	ws, err := scanWorkspace(savedSearchScanner{sc: sc, prefix: dst})
	if err != nil {
		return SavedSearch{}, err
	}
	s.Workspace = ws
	if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
		return SavedSearch{}, fmt.Errorf("saved search tags: %w", err)
	}
	if s.Audit.CreatedAt, err = parseTime(created); err != nil {
		return SavedSearch{}, err
	}
	if s.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return SavedSearch{}, err
	}
	return s, nil
}

func listSavedSearches(ctx context.Context, r run, where string, args ...any) ([]SavedSearch, error) {
	q := `SELECT ` + savedSearchColumns + savedSearchFrom
	if where != "" {
		q += `WHERE ` + where
	}
	return queryAll(ctx, r, "list saved searches", scanSavedSearch, q+` ORDER BY x.ws_key, x.name_key`, args...)
}

// PutSavedSearch creates or replaces a saved search of an existing
// workspace (by resource ID). s.ETag, when set and not "*", must match the
// stored one (Azure's optimistic concurrency on the body's etag), as must
// the conditional headers in pre. A function alias must be unique in the
// workspace. It reports whether the saved search was created.
func (c *DB) PutSavedSearch(ctx context.Context, workspaceID string, s SavedSearch, pre Precondition, by Actor) (SavedSearch, bool, error) {
	if err := validateSavedSearch(&s); err != nil {
		return SavedSearch{}, false, err
	}
	if s.Tags == nil {
		s.Tags = []SavedSearchTag{}
	}
	created := false
	err := c.inTx(ctx, func(r run) error {
		ws, err := workspaceByID(ctx, r, workspaceID)
		if err != nil {
			return err
		}
		s.Workspace = ws
		olds, err := listSavedSearches(ctx, r, `x.ws_key = ? AND x.name_key = ?`, key(ws.ID()), key(s.Name))
		if err != nil {
			return err
		}
		var old *SavedSearch
		if len(olds) == 1 {
			old = &olds[0]
		}
		oldETag := ""
		if old != nil {
			oldETag = old.ETag
		}
		if err := pre.check(old != nil, oldETag); err != nil {
			return err
		}
		if s.ETag != "" && strings.TrimSpace(s.ETag) != "*" {
			if old == nil || !etagListMatches(s.ETag, old.ETag) {
				return conflict("Conflict", "The saved search '%s' was changed since its etag '%s' was read; read it again or use '*'.", s.Name, truncate(s.ETag, 100))
			}
		}
		if s.FunctionAlias != "" {
			var other string
			err := r.row(ctx, `SELECT name FROM saved_searches WHERE ws_key = ? AND alias_key = ? AND name_key <> ?`,
				key(ws.ID()), key(s.FunctionAlias), key(s.Name)).Scan(&other)
			if err == nil {
				return conflict("Conflict", "The function alias '%s' is already used by the saved search '%s'.", s.FunctionAlias, other)
			}
			if !isNoRows(err) {
				return fmt.Errorf("put saved search: %w", err)
			}
		}
		etag, err := c.newETag()
		if err != nil {
			return err
		}
		s.ETag = etag
		now := c.nowUTC()
		s.Audit.ModifiedAt, s.Audit.ModifiedBy, s.Audit.ModifiedByType = now, by.ID, by.Type
		var alias any
		if s.FunctionAlias != "" {
			alias = key(s.FunctionAlias)
		}
		tags, err := json.Marshal(s.Tags)
		if err != nil {
			return fmt.Errorf("encode tags: %w", err)
		}
		if old != nil {
			s.Name = old.Name
			s.Audit.CreatedAt, s.Audit.CreatedBy, s.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
			_, err = r.exec(ctx, `UPDATE saved_searches SET category = ?, display_name = ?, query_sealed = ?, function_alias = ?,
				alias_key = ?, function_parameters = ?, tags = ?, version = ?, etag = ?, modified_at = ?, modified_by = ?,
				modified_by_type = ? WHERE ws_key = ? AND name_key = ?`,
				s.Category, s.DisplayName, s.QuerySealed, s.FunctionAlias, alias, s.FunctionParameters, string(tags), s.Version,
				s.ETag, fmtTime(now), by.ID, by.Type, key(ws.ID()), key(s.Name))
		} else {
			var n int
			if err := r.row(ctx, `SELECT COUNT(*) FROM saved_searches WHERE ws_key = ?`, key(ws.ID())).Scan(&n); err != nil {
				return fmt.Errorf("put saved search: %w", err)
			}
			if n >= MaxSavedSearchesPerWorkspace {
				return conflict("SavedSearchLimitExceeded", "The workspace '%s' already has %d saved searches.", ws.Name, n)
			}
			created = true
			s.Audit.CreatedAt, s.Audit.CreatedBy, s.Audit.CreatedByType = now, by.ID, by.Type
			_, err = r.exec(ctx, `INSERT INTO saved_searches (ws_key, name_key, name, category, display_name, query_sealed,
				function_alias, alias_key, function_parameters, tags, version, etag, created_at, created_by, created_by_type,
				modified_at, modified_by, modified_by_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(ws.ID()), key(s.Name), s.Name, s.Category, s.DisplayName, s.QuerySealed, s.FunctionAlias, alias,
				s.FunctionParameters, string(tags), s.Version, s.ETag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put saved search: %w", err)
		}
		return nil
	})
	if err != nil {
		return SavedSearch{}, false, err
	}
	return s, created, nil
}

// SavedSearch returns one saved search of a workspace (by resource ID).
func (c *DB) SavedSearch(ctx context.Context, workspaceID, name string) (SavedSearch, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return SavedSearch{}, err
	}
	out, err := listSavedSearches(ctx, c.r(), `x.ws_key = ? AND x.name_key = ?`, key(ws.ID()), key(name))
	if err != nil {
		return SavedSearch{}, err
	}
	if len(out) == 0 {
		return SavedSearch{}, errResourceNotFound(TypeSavedSearch+"/"+name, ws.ResourceGroup)
	}
	return out[0], nil
}

// SavedSearches lists the saved searches of a workspace (by resource ID).
func (c *DB) SavedSearches(ctx context.Context, workspaceID string) ([]SavedSearch, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return nil, err
	}
	return listSavedSearches(ctx, c.r(), `x.ws_key = ?`, key(ws.ID()))
}

// WorkspaceFunctions lists the saved searches with a function alias of the
// workspace with the given customerId (for the query API).
func (c *DB) WorkspaceFunctions(ctx context.Context, customerID string) ([]SavedSearch, error) {
	return listSavedSearches(ctx, c.r(), `w.customer_id = ? AND x.function_alias <> ''`, strings.ToLower(customerID))
}

// DeleteSavedSearch removes a saved search; it reports whether it existed.
func (c *DB) DeleteSavedSearch(ctx context.Context, workspaceID, name string, pre Precondition) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		ws, err := workspaceByID(ctx, r, workspaceID)
		if err != nil {
			return err
		}
		olds, err := listSavedSearches(ctx, r, `x.ws_key = ? AND x.name_key = ?`, key(ws.ID()), key(name))
		if err != nil {
			return err
		}
		etag := ""
		if len(olds) == 1 {
			etag = olds[0].ETag
		}
		if err := pre.check(len(olds) == 1, etag); err != nil {
			return err
		}
		if len(olds) == 0 {
			return nil
		}
		if _, err := r.exec(ctx, `DELETE FROM saved_searches WHERE ws_key = ? AND name_key = ?`, key(ws.ID()), key(name)); err != nil {
			return fmt.Errorf("delete saved search: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// savedSearchScanner scans a row whose first columns go to prefix and the
// rest (the workspace's) to what scanWorkspace passes.
type savedSearchScanner struct {
	sc     interface{ Scan(...any) error }
	prefix []any
}

func (p savedSearchScanner) Scan(dest ...any) error {
	return p.sc.Scan(append(append([]any{}, p.prefix...), dest...)...)
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
