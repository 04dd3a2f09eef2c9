package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"custos/internal/store"
)

// AzureActivityTable is the table records are forwarded to.
const AzureActivityTable = "AzureActivity"

// AzureActivitySchema returns the columns of Azure's AzureActivity table
// that Custos fills, without the system columns the store adds (TenantId,
// Type, _ResourceId, _ItemId, _TimeReceived). The server creates the table
// with it in the workspace chosen for the activity log.
func AzureActivitySchema() store.Schema {
	s := store.TypeString
	return store.Schema{
		{Name: "TimeGenerated", Type: store.TypeDatetime},
		{Name: "OperationName", Type: s},
		{Name: "OperationNameValue", Type: s},
		{Name: "Level", Type: s},
		{Name: "ActivityStatus", Type: s},
		{Name: "ActivityStatusValue", Type: s},
		{Name: "ActivitySubstatus", Type: s},
		{Name: "ActivitySubstatusValue", Type: s},
		{Name: "ResourceGroup", Type: s},
		{Name: "SubscriptionId", Type: s},
		{Name: "CorrelationId", Type: s},
		{Name: "Caller", Type: s},
		{Name: "CallerIpAddress", Type: s},
		{Name: "Category", Type: s},
		{Name: "CategoryValue", Type: s},
		{Name: "HTTPRequest", Type: s},
		{Name: "Properties", Type: s},
		{Name: "Properties_d", Type: store.TypeDynamic},
		{Name: "EventSubmissionTimestamp", Type: store.TypeDatetime},
		{Name: "Authorization", Type: s},
		{Name: "Authorization_d", Type: store.TypeDynamic},
		{Name: "ResourceId", Type: s},
		{Name: "OperationId", Type: s},
		{Name: "ResourceProvider", Type: s},
		{Name: "ResourceProviderValue", Type: s},
		{Name: "Resource", Type: s},
		{Name: "Hierarchy", Type: s},
		{Name: "Claims", Type: s},
		{Name: "Claims_d", Type: store.TypeDynamic},
		{Name: "SourceSystem", Type: s},
		{Name: "EventDataId", Type: s},
	}
}

// resourceParts splits an ARM ID into subscription, resource group,
// provider and resource name.
func resourceParts(id string) (sub, rg, provider, name string) {
	p := strings.Split(strings.Trim(id, "/"), "/")
	for i := 0; i+1 < len(p); i++ {
		switch strings.ToLower(p[i]) {
		case "subscriptions":
			if sub == "" {
				sub = p[i+1]
			}
		case "resourcegroups":
			if rg == "" {
				rg = p[i+1]
			}
		case "providers":
			provider = p[i+1]
		}
	}
	if len(p) > 0 {
		name = p[len(p)-1]
	}
	return sub, rg, provider, name
}

// AzureActivityBatch renders records as one batch of the AzureActivity
// schema.
func AzureActivityBatch(recs []Record, eventIDs []string) (*store.Batch, error) {
	schema := AzureActivitySchema()
	b := &store.Batch{Schema: schema, Len: len(recs)}
	for _, c := range schema {
		v := &store.Vector{Type: c.Type}
		b.Cols = append(b.Cols, v)
	}
	for i, r := range recs {
		sub, rg, provider, name := resourceParts(r.ResourceID)
		props := "{}"
		if len(r.Properties) > 0 {
			pb, err := json.Marshal(r.Properties)
			if err != nil {
				return nil, fmt.Errorf("encode properties: %w", err)
			}
			props = string(pb)
		}
		authz, _ := json.Marshal(map[string]string{"action": r.Action, "scope": r.ResourceID})
		claims, _ := json.Marshal(map[string]string{"oid": r.Caller, "principalType": r.CallerType, "name": r.CallerName})
		httpReq, _ := json.Marshal(map[string]string{"clientRequestId": r.CorrelationID, "clientIpAddress": r.CallerIPAddress, "method": r.Method})
		eventID := ""
		if i < len(eventIDs) {
			eventID = eventIDs[i]
		}
		ticks := store.TicksFromTime(r.Time)
		vals := map[string]any{
			"TimeGenerated": ticks, "OperationName": r.OperationName, "OperationNameValue": r.OperationName,
			"Level": r.Level, "ActivityStatus": r.Status, "ActivityStatusValue": r.Status,
			"ActivitySubstatus": r.SubStatus, "ActivitySubstatusValue": r.SubStatus,
			"ResourceGroup": rg, "SubscriptionId": sub, "CorrelationId": r.CorrelationID,
			"Caller": r.Caller, "CallerIpAddress": r.CallerIPAddress, "Category": r.Category, "CategoryValue": r.Category,
			"HTTPRequest": string(httpReq), "Properties": props, "Properties_d": props,
			"EventSubmissionTimestamp": ticks, "Authorization": string(authz), "Authorization_d": string(authz),
			"ResourceId": r.ResourceID, "OperationId": r.CorrelationID, "ResourceProvider": provider,
			"ResourceProviderValue": strings.ToUpper(provider), "Resource": name, "Hierarchy": "",
			"Claims": string(claims), "Claims_d": string(claims), "SourceSystem": "Azure", "EventDataId": eventID,
		}
		for j, c := range schema {
			switch v := vals[c.Name].(type) {
			case int64:
				b.Cols[j].Int = append(b.Cols[j].Int, v)
			case string:
				b.Cols[j].Str = append(b.Cols[j].Str, v)
			default:
				return nil, fmt.Errorf("BUG: no value for AzureActivity column %s", c.Name)
			}
		}
	}
	return b, nil
}

// forward appends one record to the AzureActivity table.
func (l *Log) forward(ctx context.Context, r Record) error {
	b, err := AzureActivityBatch([]Record{r}, nil)
	if err != nil {
		return err
	}
	app, err := l.fwd.Appender(ctx, store.TableRef{WorkspaceID: l.fwdWS, Table: AzureActivityTable})
	if err != nil {
		return fmt.Errorf("open AzureActivity appender: %w", err)
	}
	if err := app.Append(b); err != nil {
		_ = app.Rollback()
		return fmt.Errorf("append to AzureActivity: %w", err)
	}
	return app.Commit(ctx)
}
