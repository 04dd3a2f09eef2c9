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

// Alert resource types as ARM spells them.
const (
	TypeScheduledQueryRule = "Microsoft.Insights/scheduledQueryRules"
	TypeActionGroup        = "Microsoft.Insights/actionGroups"
	TypeActionRule         = "Microsoft.AlertsManagement/actionRules"
	TypeMetricAlert        = "Microsoft.Insights/metricAlerts"
	TypeActivityLogAlert   = "Microsoft.Insights/activityLogAlerts"
)

// AlertResourceID returns the ARM ID of an alert resource of type typ.
func AlertResourceID(typ, sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + typ + "/" + name
}

// AlertResource is a scheduled query rule, metric alert rule, activity log
// alert rule, action group or alert processing rule. The catalog stores Properties and Identity as the alert package
// encodes them (Azure's JSON); it validates only the envelope.
type AlertResource struct {
	Type           string // one of the Type* alert constants
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Kind           string
	Tags           map[string]string
	Identity       json.RawMessage // nil when none
	Properties     json.RawMessage
	ETag           string
	Audit          Audit
}

// ID returns the resource's ARM ID.
func (a *AlertResource) ID() string {
	return AlertResourceID(a.Type, a.SubscriptionID, a.ResourceGroup, a.Name)
}

// alertNameRE is ARM's generic resource name rule for these types: no
// slashes or characters that break URLs, at most 260 characters.
var alertNameRE = regexp.MustCompile(`^[^<>*%&:\\?/#|+\x00-\x1f]{1,260}$`)

// ValidateAlertResourceName checks the name of an alert resource.
func ValidateAlertResourceName(name string) error {
	if !alertNameRE.MatchString(name) || strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return Invalid("InvalidResourceName", "name",
			"The resource name '%s' is invalid. It must be 1 to 260 characters, must not end with a period or space, and must not contain '<', '>', '*', '%%', '&', ':', '\\', '?', '/', '#', '|' or '+'.",
			truncate(name, 100))
	}
	return nil
}

func knownAlertType(t string) bool {
	switch t {
	case TypeScheduledQueryRule, TypeActionGroup, TypeActionRule, TypeMetricAlert, TypeActivityLogAlert:
		return true
	}
	return false
}

// AlertSecretsUpdate lists the sealed secrets a resource should have after a
// put, by name: a secret not named in Create is deleted, and a Create entry
// is inserted only if that name has no secret yet (existing secrets are
// kept, so a receiver's secret survives updates of its group).
type AlertSecretsUpdate struct {
	Create map[string][]byte
	// Replace entries are written whether or not the name has a secret
	// (sealed content that changes with the resource, like a rule's query).
	Replace map[string][]byte
}

// PutAlertResource creates or replaces an alert resource, together with its
// secrets when secrets is not nil (see AlertSecretsUpdate). It returns the
// stored resource, whether it was created, and the names of the secrets it
// inserted (the caller shows those once).
func (c *DB) PutAlertResource(ctx context.Context, a AlertResource, secrets *AlertSecretsUpdate, pre Precondition, by Actor) (AlertResource, bool, []string, error) {
	if !knownAlertType(a.Type) {
		return AlertResource{}, false, nil, fmt.Errorf("put alert resource: unknown type %q", a.Type)
	}
	if err := ValidateAlertResourceName(a.Name); err != nil {
		return AlertResource{}, false, nil, err
	}
	if err := ValidateLocation(a.Location); err != nil {
		return AlertResource{}, false, nil, err
	}
	if err := ValidateTags(a.Tags); err != nil {
		return AlertResource{}, false, nil, err
	}
	tags, err := marshalTags(a.Tags)
	if err != nil {
		return AlertResource{}, false, nil, err
	}
	etag, err := c.newETag()
	if err != nil {
		return AlertResource{}, false, nil, err
	}
	ident := ""
	if len(a.Identity) > 0 {
		ident = string(a.Identity)
	}
	props := "{}"
	if len(a.Properties) > 0 {
		props = string(a.Properties)
	}
	created := false
	var inserted []string
	err = c.inTx(ctx, func(r run) error {
		g, err := requireResourceGroup(ctx, r, a.SubscriptionID, a.ResourceGroup)
		if err != nil {
			return err
		}
		a.SubscriptionID, a.ResourceGroup = g.SubscriptionID, g.Name
		old, err := getAlertResource(ctx, r, a.Type, a.SubscriptionID, a.ResourceGroup, a.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		if exists {
			a.Name, a.Audit.CreatedAt, a.Audit.CreatedBy, a.Audit.CreatedByType =
				old.Name, old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
		} else {
			created = true
			a.Audit.CreatedAt, a.Audit.CreatedBy, a.Audit.CreatedByType = now, by.ID, by.Type
		}
		a.Audit.ModifiedAt, a.Audit.ModifiedBy, a.Audit.ModifiedByType = now, by.ID, by.Type
		a.ETag = etag
		k := key(a.ID())
		if exists {
			_, err = r.exec(ctx, `UPDATE alert_resources SET location = ?, kind = ?, tags = ?, identity = ?, properties = ?,
				etag = ?, modified_at = ?, modified_by = ?, modified_by_type = ? WHERE res_key = ?`,
				a.Location, a.Kind, tags, ident, props, a.ETag, fmtTime(now), by.ID, by.Type, k)
		} else {
			_, err = r.exec(ctx, `INSERT INTO alert_resources (res_key, res_type, rg_key, sub_key, name, location, kind, tags, identity,
				properties, etag, created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				k, a.Type, key(g.ID()), key(a.SubscriptionID), a.Name, a.Location, a.Kind, tags, ident, props, a.ETag,
				fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put alert resource: %w", err)
		}
		if secrets == nil {
			return nil
		}
		have, err := alertSecretNames(ctx, r, k)
		if err != nil {
			return err
		}
		for name := range have {
			if _, keep := secrets.Create[name]; keep {
				continue
			}
			if _, keep := secrets.Replace[name]; keep {
				continue
			}
			if _, err := r.exec(ctx, `DELETE FROM alert_secrets WHERE res_key = ? AND name = ?`, k, name); err != nil {
				return fmt.Errorf("delete alert secret: %w", err)
			}
		}
		for name, sealed := range secrets.Create {
			if have[name] {
				continue
			}
			if _, err := r.exec(ctx, `INSERT INTO alert_secrets (res_key, name, sealed, created_at) VALUES (?, ?, ?, ?)`,
				k, name, sealed, fmtTime(now)); err != nil {
				return fmt.Errorf("insert alert secret: %w", err)
			}
			inserted = append(inserted, name)
		}
		for name, sealed := range secrets.Replace {
			if err := upsertAlertSecret(ctx, r, k, name, sealed, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return AlertResource{}, false, nil, err
	}
	return a, created, inserted, nil
}

func alertSecretNames(ctx context.Context, r run, resKey string) (map[string]bool, error) {
	rows, err := r.query(ctx, `SELECT name FROM alert_secrets WHERE res_key = ?`, resKey)
	if err != nil {
		return nil, fmt.Errorf("list alert secrets: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list alert secrets: %w", err)
		}
		out[n] = true
	}
	return out, rows.Err()
}

// AlertSecret returns the sealed secret name of the resource with ARM ID id.
func (c *DB) AlertSecret(ctx context.Context, id, name string) ([]byte, error) {
	var sealed []byte
	err := c.r().row(ctx, `SELECT sealed FROM alert_secrets WHERE res_key = ? AND name = ?`, key(id), name).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("SecretNotFound", "The resource '%s' has no secret '%s'.", truncate(id, 300), truncate(name, 100))
	}
	if err != nil {
		return nil, fmt.Errorf("get alert secret: %w", err)
	}
	return sealed, nil
}

const alertColumns = `a.res_type, s.subscription_id, g.name, a.name, a.location, a.kind, a.tags, a.identity, a.properties, a.etag,
	a.created_at, a.created_by, a.created_by_type, a.modified_at, a.modified_by, a.modified_by_type`

const alertFrom = ` FROM alert_resources a JOIN resource_groups g ON g.rg_key = a.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanAlertResource(sc interface{ Scan(...any) error }) (AlertResource, error) {
	var a AlertResource
	var tags, ident, props, created, modified string
	err := sc.Scan(&a.Type, &a.SubscriptionID, &a.ResourceGroup, &a.Name, &a.Location, &a.Kind, &tags, &ident, &props,
		&a.ETag, &created, &a.Audit.CreatedBy, &a.Audit.CreatedByType, &modified, &a.Audit.ModifiedBy, &a.Audit.ModifiedByType)
	if err != nil {
		return AlertResource{}, err
	}
	if ident != "" {
		a.Identity = json.RawMessage(ident)
	}
	a.Properties = json.RawMessage(props)
	if a.Tags, err = unmarshalTags(tags); err != nil {
		return AlertResource{}, err
	}
	if a.Audit.CreatedAt, err = parseTime(created); err != nil {
		return AlertResource{}, err
	}
	if a.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return AlertResource{}, err
	}
	return a, nil
}

func getAlertResource(ctx context.Context, r run, typ, sub, rg, name string) (AlertResource, error) {
	a, err := scanAlertResource(r.row(ctx, `SELECT `+alertColumns+alertFrom+`WHERE a.res_key = ?`,
		key(AlertResourceID(typ, sub, rg, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return AlertResource{}, errResourceNotFound(typ+"/"+name, rg)
	}
	if err != nil {
		return AlertResource{}, fmt.Errorf("get alert resource: %w", err)
	}
	return a, nil
}

func listAlertResources(ctx context.Context, r run, where string, args ...any) ([]AlertResource, error) {
	return queryAll(ctx, r, "list alert resources", scanAlertResource, `SELECT `+alertColumns+alertFrom+`WHERE `+where+` ORDER BY a.res_key`, args...)
}

// AlertResource returns one alert resource of type typ.
func (c *DB) AlertResource(ctx context.Context, typ, sub, rg, name string) (AlertResource, error) {
	r := c.r()
	a, err := getAlertResource(ctx, r, typ, sub, rg, name)
	if errors.Is(err, ErrNotFound) {
		if _, perr := requireResourceGroup(ctx, r, sub, rg); perr != nil {
			return AlertResource{}, perr
		}
	}
	return a, err
}

// AlertResourceByID returns the alert resource with the given ARM ID
// (compared case-insensitively).
func (c *DB) AlertResourceByID(ctx context.Context, id string) (AlertResource, error) {
	a, err := scanAlertResource(c.r().row(ctx, `SELECT `+alertColumns+alertFrom+`WHERE a.res_key = ?`, key(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return AlertResource{}, notFound("ResourceNotFound", "The Resource '%s' was not found.", truncate(id, 300))
	}
	if err != nil {
		return AlertResource{}, fmt.Errorf("get alert resource: %w", err)
	}
	return a, nil
}

// AlertResources lists the resources of type typ in a subscription, or in
// one of its resource groups when rg is not empty.
func (c *DB) AlertResources(ctx context.Context, typ, sub, rg string) ([]AlertResource, error) {
	r := c.r()
	if rg == "" {
		if _, err := getSubscription(ctx, r, sub); err != nil {
			return nil, err
		}
		return listAlertResources(ctx, r, `a.res_type = ? AND a.sub_key = ?`, typ, key(sub))
	}
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return nil, err
	}
	return listAlertResources(ctx, r, `a.res_type = ? AND a.rg_key = ?`, typ, key(ResourceGroupResourceID(sub, rg)))
}

// AllAlertResources lists every resource of type typ (the scheduler's view).
func (c *DB) AllAlertResources(ctx context.Context, typ string) ([]AlertResource, error) {
	return listAlertResources(ctx, c.r(), `a.res_type = ?`, typ)
}

// DeleteAlertResource deletes an alert resource with its secrets and
// scheduler state. It returns the deleted resource, or false when there was
// nothing to delete.
func (c *DB) DeleteAlertResource(ctx context.Context, typ, sub, rg, name string, pre Precondition) (AlertResource, bool, error) {
	var out AlertResource
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		old, err := getAlertResource(ctx, r, typ, sub, rg, name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		if _, err := r.exec(ctx, `DELETE FROM alert_resources WHERE res_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete alert resource: %w", err)
		}
		out, deleted = old, true
		return nil
	})
	return out, deleted, err
}
