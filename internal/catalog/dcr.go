package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DataCollectionRule is a Microsoft.Insights/dataCollectionRules resource.
// Properties is stored whole, as Azure's JSON.
type DataCollectionRule struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Kind           string // "Direct", "Linux", "Windows", ... or ""
	Tags           map[string]string
	Identity       json.RawMessage // the managed identity block as sent; nil if none
	// ImmutableID is "dcr-" + 32 hex digits, assigned at creation; the Logs
	// Ingestion API addresses the rule by it.
	ImmutableID string
	Properties  DCRProperties
	ETag        string
	Audit       Audit
}

// ID returns the rule's ARM resource ID.
func (d *DataCollectionRule) ID() string {
	return DataCollectionRuleResourceID(d.SubscriptionID, d.ResourceGroup, d.Name)
}

// DCRProperties is the properties object of a data collection rule, with
// Azure's JSON names. dataSources is kept verbatim.
type DCRProperties struct {
	Description              string                       `json:"description,omitempty"`
	DataCollectionEndpointID string                       `json:"dataCollectionEndpointId,omitempty"`
	ImmutableID              string                       `json:"immutableId,omitempty"`
	Endpoints                *DCREndpoints                `json:"endpoints,omitempty"`
	StreamDeclarations       map[string]StreamDeclaration `json:"streamDeclarations,omitempty"`
	DataSources              json.RawMessage              `json:"dataSources,omitempty"`
	Destinations             *DCRDestinations             `json:"destinations,omitempty"`
	DataFlows                []DataFlow                   `json:"dataFlows,omitempty"`
	ProvisioningState        string                       `json:"provisioningState,omitempty"`
	Metadata                 *DCRMetadata                 `json:"metadata,omitempty"`
}

// DCREndpoints are the rule's own ingestion endpoints (read-only).
type DCREndpoints struct {
	LogsIngestion    string `json:"logsIngestion,omitempty"`
	MetricsIngestion string `json:"metricsIngestion,omitempty"`
}

// DCRMetadata is read-only metadata Azure reports on a rule.
type DCRMetadata struct {
	ProvisionedBy         string `json:"provisionedBy,omitempty"`
	ProvisionedByResource string `json:"provisionedByResourceId,omitempty"`
}

// StreamDeclaration declares the columns of an input stream.
type StreamDeclaration struct {
	Columns []StreamColumn `json:"columns"`
}

// StreamColumn is one declared column; Type is a DCR type name ("string",
// "int", "long", "real", "boolean", "datetime", "dynamic").
type StreamColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// DCRDestinations are where data flows can send data.
type DCRDestinations struct {
	LogAnalytics        []LogAnalyticsDestination `json:"logAnalytics,omitempty"`
	AzureMonitorMetrics *NamedDestination         `json:"azureMonitorMetrics,omitempty"`
}

// LogAnalyticsDestination is a workspace destination. WorkspaceID (the
// customerId) is filled in by the service.
type LogAnalyticsDestination struct {
	WorkspaceResourceID string `json:"workspaceResourceId"`
	WorkspaceID         string `json:"workspaceId,omitempty"`
	Name                string `json:"name"`
}

// NamedDestination is a destination identified only by its name.
type NamedDestination struct {
	Name string `json:"name"`
}

// DataFlow routes streams to destinations, optionally through a KQL
// transformation, into an output stream (a table).
type DataFlow struct {
	Streams          []string `json:"streams"`
	Destinations     []string `json:"destinations"`
	TransformKql     string   `json:"transformKql,omitempty"`
	OutputStream     string   `json:"outputStream,omitempty"`
	BuiltInTransform string   `json:"builtInTransform,omitempty"`
}

// Stream name prefixes.
const (
	CustomStreamPrefix    = "Custom-"
	MicrosoftStreamPrefix = "Microsoft-"
)

// OutputTable returns the table a flow writes the given input stream to:
// outputStream "Custom-X_CL" is table X_CL and "Microsoft-Syslog" is Syslog;
// without outputStream, the input stream's own name is used the same way.
func (f *DataFlow) OutputTable(stream string) (string, bool) {
	out := f.OutputStream
	if out == "" {
		out = stream
	}
	switch {
	case strings.HasPrefix(out, CustomStreamPrefix) && len(out) > len(CustomStreamPrefix):
		return out[len(CustomStreamPrefix):], true
	case strings.HasPrefix(out, MicrosoftStreamPrefix) && len(out) > len(MicrosoftStreamPrefix):
		return out[len(MicrosoftStreamPrefix):], true
	}
	return "", false
}

// IsPassthrough reports whether the flow's transformation leaves records
// unchanged (none, or just "source").
func (f *DataFlow) IsPassthrough() bool {
	t := strings.TrimSpace(f.TransformKql)
	return t == "" || t == "source"
}

// PutDataCollectionRule creates or replaces a data collection rule. The
// immutable ID is assigned at creation and kept on update (a different
// non-empty d.ImmutableID is rejected). Semantic validation (streams,
// destinations, transformations) is the caller's. It reports whether the rule
// was created.
func (c *DB) PutDataCollectionRule(ctx context.Context, d DataCollectionRule, pre Precondition, by Actor) (DataCollectionRule, bool, error) {
	if err := ValidateDataCollectionRuleName(d.Name); err != nil {
		return DataCollectionRule{}, false, err
	}
	if err := ValidateLocation(d.Location); err != nil {
		return DataCollectionRule{}, false, err
	}
	if err := ValidateTags(d.Tags); err != nil {
		return DataCollectionRule{}, false, err
	}
	tags, err := marshalTags(d.Tags)
	if err != nil {
		return DataCollectionRule{}, false, err
	}
	etag, err := c.newETag()
	if err != nil {
		return DataCollectionRule{}, false, err
	}
	identity := ""
	if len(d.Identity) > 0 {
		identity = string(d.Identity)
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		g, err := requireResourceGroup(ctx, r, d.SubscriptionID, d.ResourceGroup)
		if err != nil {
			return err
		}
		d.SubscriptionID, d.ResourceGroup = g.SubscriptionID, g.Name
		old, err := getDataCollectionRule(ctx, r, d.SubscriptionID, d.ResourceGroup, d.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		if exists {
			if d.ImmutableID != "" && d.ImmutableID != old.ImmutableID {
				return Invalid("InvalidPayload", "properties.immutableId",
					"The immutableId of data collection rule '%s' is assigned by the service and cannot be changed.", old.Name)
			}
			d.Name, d.ImmutableID, d.Audit.CreatedAt, d.Audit.CreatedBy, d.Audit.CreatedByType =
				old.Name, old.ImmutableID, old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
		} else {
			created = true
			if d.ImmutableID, err = c.newImmutableID(); err != nil {
				return err
			}
			d.Audit.CreatedAt, d.Audit.CreatedBy, d.Audit.CreatedByType = now, by.ID, by.Type
		}
		d.Audit.ModifiedAt, d.Audit.ModifiedBy, d.Audit.ModifiedByType = now, by.ID, by.Type
		d.ETag = etag
		d.Properties.ImmutableID = d.ImmutableID
		d.Properties.ProvisioningState = "Succeeded"
		props, err := json.Marshal(d.Properties)
		if err != nil {
			return fmt.Errorf("encode data collection rule: %w", err)
		}
		if exists {
			_, err = r.exec(ctx, `UPDATE data_collection_rules SET location = ?, kind = ?, tags = ?, identity = ?, properties = ?,
				etag = ?, modified_at = ?, modified_by = ?, modified_by_type = ? WHERE dcr_key = ?`,
				d.Location, d.Kind, tags, identity, string(props), d.ETag, fmtTime(now), by.ID, by.Type, key(d.ID()))
		} else {
			_, err = r.exec(ctx, `INSERT INTO data_collection_rules (dcr_key, rg_key, sub_key, name, location, kind, tags, identity,
				immutable_id, properties, etag, created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(d.ID()), key(g.ID()), key(d.SubscriptionID), d.Name, d.Location, d.Kind, tags, identity, d.ImmutableID,
				string(props), d.ETag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put data collection rule: %w", err)
		}
		return nil
	})
	if err != nil {
		return DataCollectionRule{}, false, err
	}
	return d, created, nil
}

const dcrColumns = `s.subscription_id, g.name, d.name, d.location, d.kind, d.tags, d.identity, d.immutable_id, d.properties, d.etag,
	d.created_at, d.created_by, d.created_by_type, d.modified_at, d.modified_by, d.modified_by_type`

const dcrFrom = ` FROM data_collection_rules d JOIN resource_groups g ON g.rg_key = d.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanDataCollectionRule(sc interface{ Scan(...any) error }) (DataCollectionRule, error) {
	var d DataCollectionRule
	var tags, identity, props, created, modified string
	err := sc.Scan(&d.SubscriptionID, &d.ResourceGroup, &d.Name, &d.Location, &d.Kind, &tags, &identity, &d.ImmutableID, &props,
		&d.ETag, &created, &d.Audit.CreatedBy, &d.Audit.CreatedByType, &modified, &d.Audit.ModifiedBy, &d.Audit.ModifiedByType)
	if err != nil {
		return DataCollectionRule{}, err
	}
	if identity != "" {
		d.Identity = json.RawMessage(identity)
	}
	if err := json.Unmarshal([]byte(props), &d.Properties); err != nil {
		return DataCollectionRule{}, fmt.Errorf("decode stored data collection rule: %w", err)
	}
	if d.Tags, err = unmarshalTags(tags); err != nil {
		return DataCollectionRule{}, err
	}
	if d.Audit.CreatedAt, err = parseTime(created); err != nil {
		return DataCollectionRule{}, err
	}
	if d.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return DataCollectionRule{}, err
	}
	return d, nil
}

func getDataCollectionRule(ctx context.Context, r run, sub, rg, name string) (DataCollectionRule, error) {
	d, err := scanDataCollectionRule(r.row(ctx, `SELECT `+dcrColumns+dcrFrom+`WHERE d.dcr_key = ?`,
		key(DataCollectionRuleResourceID(sub, rg, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return DataCollectionRule{}, errResourceNotFound(TypeDataCollectionRule+"/"+name, rg)
	}
	if err != nil {
		return DataCollectionRule{}, fmt.Errorf("get data collection rule: %w", err)
	}
	return d, nil
}

func listDataCollectionRules(ctx context.Context, r run, where string, args ...any) ([]DataCollectionRule, error) {
	q := `SELECT ` + dcrColumns + dcrFrom
	if where != "" {
		q += `WHERE ` + where
	}
	return queryAll(ctx, r, "list data collection rules", scanDataCollectionRule, q+` ORDER BY d.dcr_key`, args...)
}

// DataCollectionRule returns a rule by subscription, resource group and name.
func (c *DB) DataCollectionRule(ctx context.Context, sub, rg, name string) (DataCollectionRule, error) {
	r := c.r()
	d, err := getDataCollectionRule(ctx, r, sub, rg, name)
	if errors.Is(err, ErrNotFound) {
		if _, perr := requireResourceGroup(ctx, r, sub, rg); perr != nil {
			return DataCollectionRule{}, perr
		}
	}
	return d, err
}

// DataCollectionRuleByImmutableID returns the rule with the given immutable
// ID ("dcr-..."), as the Logs Ingestion API addresses it.
func (c *DB) DataCollectionRuleByImmutableID(ctx context.Context, immutableID string) (DataCollectionRule, error) {
	d, err := scanDataCollectionRule(c.r().row(ctx, `SELECT `+dcrColumns+dcrFrom+`WHERE d.immutable_id = ?`, strings.ToLower(immutableID)))
	if errors.Is(err, sql.ErrNoRows) {
		return DataCollectionRule{}, notFound("NotFound", "Data collection rule with immutable Id '%s' not found.", truncate(immutableID, 100))
	}
	if err != nil {
		return DataCollectionRule{}, fmt.Errorf("get data collection rule by immutable id: %w", err)
	}
	return d, nil
}

// DataCollectionRules lists the rules of a subscription, or of one of its
// resource groups when rg is not empty.
func (c *DB) DataCollectionRules(ctx context.Context, sub, rg string) ([]DataCollectionRule, error) {
	r := c.r()
	if rg == "" {
		if _, err := getSubscription(ctx, r, sub); err != nil {
			return nil, err
		}
		return listDataCollectionRules(ctx, r, `d.sub_key = ?`, key(sub))
	}
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return nil, err
	}
	return listDataCollectionRules(ctx, r, `d.rg_key = ?`, key(ResourceGroupResourceID(sub, rg)))
}

// DeleteDataCollectionRule deletes a rule. It returns the deleted rule, or
// false when there was nothing to delete.
func (c *DB) DeleteDataCollectionRule(ctx context.Context, sub, rg, name string, pre Precondition) (DataCollectionRule, bool, error) {
	var out DataCollectionRule
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		old, err := getDataCollectionRule(ctx, r, sub, rg, name)
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
		if _, err := r.exec(ctx, `DELETE FROM data_collection_rules WHERE dcr_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete data collection rule: %w", err)
		}
		out, deleted = old, true
		return nil
	})
	return out, deleted, err
}
