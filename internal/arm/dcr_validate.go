package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/store"
)

// Limits on a rule, to bound validation work.
const (
	maxStreams        = 100
	maxStreamColumns  = 500
	maxDestinations   = 10
	maxDataFlows      = 100
	maxDetails        = 20
	maxTransformBytes = 15 << 10
)

var dcrKinds = []string{"Direct", "Linux", "Windows", "AgentDirectToStore", "AgentSettings", "PlatformTelemetry", "WorkspaceTransforms"}

var dataSourceKinds = []string{"performanceCounters", "windowsEventLogs", "syslog", "extensions", "logFiles", "iisLogs",
	"windowsFirewallLogs", "prometheusForwarder", "platformTelemetry", "dataImports"}

var (
	streamColumnRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)
	destNameRE     = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,63}$`)
)

// parseStreamType accepts the stream declaration types of a DCR.
func parseStreamType(s string) (store.ColumnType, bool) {
	switch strings.ToLower(s) {
	case "string":
		return store.TypeString, true
	case "int":
		return store.TypeInt, true
	case "long":
		return store.TypeLong, true
	case "real":
		return store.TypeReal, true
	case "boolean":
		return store.TypeBool, true
	case "datetime":
		return store.TypeDatetime, true
	case "dynamic":
		return store.TypeDynamic, true
	}
	return store.TypeInvalid, false
}

// problems collects validation failures as the details of Azure's
// InvalidPayload error.
type problems struct{ details []api.ErrorDetail }

func (p *problems) add(code, target, format string, args ...any) {
	if len(p.details) < maxDetails {
		p.details = append(p.details, api.ErrorDetail{Code: code, Target: target, Message: fmt.Sprintf(format, args...)})
	}
}

func (p *problems) err() error {
	if len(p.details) == 0 {
		return nil
	}
	return &api.Error{Status: http.StatusBadRequest, Code: "InvalidPayload", Message: "Data collection rule is invalid", Details: p.details}
}

// compatible reports whether values of type from can be stored in a column of
// type to.
func compatible(from, to store.ColumnType) bool {
	if from == to || to == store.TypeDynamic {
		return true
	}
	switch to {
	case store.TypeLong, store.TypeInt:
		return from == store.TypeInt || from == store.TypeLong
	case store.TypeReal:
		return from == store.TypeInt || from == store.TypeLong
	case store.TypeGUID:
		return from == store.TypeString
	case store.TypeString:
		return from == store.TypeGUID
	}
	return false
}

// validateDCR checks a rule as Azure does at PUT time and returns the
// catalog form, with workspace IDs and the ingestion endpoint filled in.
func (a *API) validateDCR(ctx context.Context, req *dcrRequest) (catalog.DataCollectionRule, error) {
	var p problems
	d := catalog.DataCollectionRule{Location: req.Location, Tags: req.Tags, Identity: req.Identity}
	if req.Kind != "" {
		k, ok := canonicalOf(req.Kind, dcrKinds)
		if !ok {
			p.add("InvalidKind", "kind", "The kind '%s' is not valid. Valid kinds are: %s.", clip(req.Kind), strings.Join(dcrKinds, ", "))
		}
		d.Kind = k
	}
	if len(req.Identity) > 0 {
		var id struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(req.Identity, &id); err != nil || !strings.EqualFold(id.Type, "None") && id.Type != "" {
			p.add("InvalidIdentity", "identity", "Managed identities on data collection rules are not supported by Custos; omit identity or set type None.")
		}
	}
	if req.Properties == nil {
		p.add("InvalidPayload", "properties", "The properties of the data collection rule are required.")
		return d, p.err()
	}
	props := req.Properties
	if props.ImmutableID != nil {
		d.ImmutableID = *props.ImmutableID
	}
	d.Properties = catalog.DCRProperties{Description: props.Description, DataCollectionEndpointID: props.DataCollectionEndpointID}
	if a.endpoint != "" {
		d.Properties.Endpoints = &catalog.DCREndpoints{LogsIngestion: a.endpoint}
	}

	// Stream declarations.
	inputs := map[string]store.Schema{} // declared Custom- streams
	if len(props.StreamDeclarations) > maxStreams {
		p.add("InvalidStreamDeclaration", "properties.streamDeclarations", "A rule can declare at most %d streams.", maxStreams)
	}
	for _, name := range sortedKeys(props.StreamDeclarations) {
		decl := props.StreamDeclarations[name]
		target := "properties.streamDeclarations." + name
		if !strings.HasPrefix(name, catalog.CustomStreamPrefix) || len(name) == len(catalog.CustomStreamPrefix) {
			p.add("InvalidStreamDeclaration", target, "Stream declaration '%s' is invalid: declared stream names must start with 'Custom-'.", clip(name))
			continue
		}
		if len(decl.Columns) == 0 || len(decl.Columns) > maxStreamColumns {
			p.add("InvalidStreamDeclaration", target, "Stream declaration '%s' must have between 1 and %d columns.", clip(name), maxStreamColumns)
			continue
		}
		var schema store.Schema
		seen := map[string]bool{}
		ok := true
		for i, c := range decl.Columns {
			ct := fmt.Sprintf("%s.columns[%d]", target, i)
			t, tok := parseStreamType(c.Type)
			switch {
			case !streamColumnRE.MatchString(c.Name):
				p.add("InvalidStreamDeclaration", ct, "Column name '%s' of stream '%s' is invalid.", clip(c.Name), clip(name))
				ok = false
			case seen[strings.ToLower(c.Name)]:
				p.add("InvalidStreamDeclaration", ct, "Column '%s' appears more than once in stream '%s'.", c.Name, clip(name))
				ok = false
			case !tok:
				p.add("InvalidStreamDeclaration", ct, "Column '%s' of stream '%s' has the invalid type '%s'. Valid types are: string, int, long, real, boolean, datetime, dynamic.",
					c.Name, clip(name), clip(c.Type))
				ok = false
			default:
				seen[strings.ToLower(c.Name)] = true
				schema = append(schema, store.Column{Name: c.Name, Type: t})
			}
		}
		if ok {
			inputs[name] = schema
		}
	}
	d.Properties.StreamDeclarations = props.StreamDeclarations
	// inputSchema resolves a stream used by a data source or flow.
	inputSchema := func(stream string) (store.Schema, bool) {
		if s, ok := inputs[stream]; ok {
			return s, true
		}
		if t, ok := strings.CutPrefix(stream, catalog.MicrosoftStreamPrefix); ok {
			return catalog.StandardTableSchema(t)
		}
		return nil, false
	}
	knownStream := func(stream string) bool {
		if _, ok := props.StreamDeclarations[stream]; ok {
			return true
		}
		_, ok := inputSchema(stream)
		return ok
	}
	streamError := func(target, stream string) {
		var builtin []string
		for _, t := range catalog.StandardTableNames() {
			builtin = append(builtin, catalog.MicrosoftStreamPrefix+t)
		}
		p.add("InvalidStream", target, "'Streams' stream '%s' must be a declared custom stream or one of: %s.", clip(stream), strings.Join(builtin, ","))
	}

	// Data sources: only their streams are checked; the rest is kept verbatim.
	if len(props.DataSources) > 0 {
		for _, kind := range sortedKeys(props.DataSources) {
			if _, ok := canonicalOf(kind, dataSourceKinds); !ok {
				p.add("InvalidDataSource", "properties.dataSources."+kind, "The data source type '%s' is not valid. Valid types are: %s.", clip(kind), strings.Join(dataSourceKinds, ", "))
				continue
			}
			for i, raw := range props.DataSources[kind] {
				target := fmt.Sprintf("properties.dataSources.%s[%d]", kind, i)
				var src struct {
					Name    string   `json:"name"`
					Streams []string `json:"streams"`
				}
				if err := json.Unmarshal(raw, &src); err != nil || src.Name == "" || len(src.Streams) == 0 {
					p.add("InvalidDataSource", target, "Each data source needs a name and at least one stream.")
					continue
				}
				for _, s := range src.Streams {
					if !knownStream(s) {
						streamError(target+".streams", s)
					}
				}
			}
		}
		b, err := json.Marshal(props.DataSources)
		if err != nil {
			return d, fmt.Errorf("encode data sources: %w", err)
		}
		d.Properties.DataSources = b
	}

	// Destinations.
	dests := map[string]*catalog.LogAnalyticsDestination{}
	workspaces := map[string]catalog.Workspace{}
	if props.Destinations != nil {
		if props.Destinations.AzureMonitorMetrics != nil {
			p.add("InvalidDestination", "properties.destinations.azureMonitorMetrics", "Azure Monitor Metrics destinations are not supported by Custos.")
		}
		if len(props.Destinations.LogAnalytics) > maxDestinations {
			p.add("InvalidDestination", "properties.destinations.logAnalytics", "A rule can have at most %d Log Analytics destinations.", maxDestinations)
		}
		la := append([]catalog.LogAnalyticsDestination(nil), props.Destinations.LogAnalytics...)
		for i := range la {
			dst := &la[i]
			target := fmt.Sprintf("properties.destinations.logAnalytics[%d]", i)
			if !destNameRE.MatchString(dst.Name) {
				p.add("InvalidDestination", target+".name", "Destination name '%s' is invalid.", clip(dst.Name))
				continue
			}
			if dests[strings.ToLower(dst.Name)] != nil {
				p.add("InvalidDestination", target+".name", "Destination name '%s' is used more than once.", dst.Name)
				continue
			}
			ws, err := a.cat.WorkspaceByResourceID(ctx, dst.WorkspaceResourceID)
			switch {
			case errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrInvalid):
				p.add("InvalidDestination", target+".workspaceResourceId", "The Log Analytics workspace '%s' of destination '%s' was not found.", clip(dst.WorkspaceResourceID), dst.Name)
				continue
			case err != nil:
				return d, err
			}
			if dst.WorkspaceID != "" && !strings.EqualFold(dst.WorkspaceID, ws.CustomerID) {
				p.add("InvalidDestination", target+".workspaceId", "The workspaceId '%s' of destination '%s' does not match the workspace's customerId.", clip(dst.WorkspaceID), dst.Name)
				continue
			}
			dst.WorkspaceResourceID, dst.WorkspaceID = ws.ID(), ws.CustomerID
			dests[strings.ToLower(dst.Name)] = dst
			workspaces[strings.ToLower(dst.Name)] = ws
		}
		d.Properties.Destinations = &catalog.DCRDestinations{LogAnalytics: la}
	}

	// Data flows.
	if len(props.DataFlows) == 0 {
		p.add("InvalidDataFlow", "properties.dataFlows", "A data collection rule needs at least one data flow.")
	}
	if len(props.DataFlows) > maxDataFlows {
		p.add("InvalidDataFlow", "properties.dataFlows", "A rule can have at most %d data flows.", maxDataFlows)
	}
	for i := range props.DataFlows {
		f := &props.DataFlows[i]
		a.validateFlow(ctx, &p, fmt.Sprintf("properties.dataFlows[%d]", i), f, knownStream, inputSchema, streamError, dests, workspaces)
	}
	d.Properties.DataFlows = props.DataFlows
	return d, p.err()
}

func (a *API) validateFlow(ctx context.Context, p *problems, target string, f *catalog.DataFlow,
	knownStream func(string) bool, inputSchema func(string) (store.Schema, bool), streamError func(string, string),
	dests map[string]*catalog.LogAnalyticsDestination, workspaces map[string]catalog.Workspace) {
	if len(f.Streams) == 0 {
		p.add("InvalidDataFlow", target+".streams", "A data flow needs at least one stream.")
		return
	}
	if len(f.Destinations) == 0 {
		p.add("InvalidDataFlow", target+".destinations", "A data flow needs at least one destination.")
		return
	}
	if f.BuiltInTransform != "" {
		p.add("InvalidDataFlow", target+".builtInTransform", "Built-in transformations are not supported by Custos.")
	}
	if len(f.TransformKql) > maxTransformBytes {
		p.add("InvalidTransformQuery", target+".transformKql", "The transformation exceeds %d bytes.", maxTransformBytes)
		return
	}
	if !f.IsPassthrough() && len(f.Streams) > 1 {
		p.add("InvalidDataFlow", target+".streams", "A data flow with a transformation must have exactly one stream.")
		return
	}
	if f.OutputStream != "" {
		t, ok := f.OutputTable("")
		switch {
		case !ok:
			p.add("InvalidOutputTable", target+".outputStream", "Output stream '%s' must be 'Custom-<Table>_CL' or 'Microsoft-<Table>'.", clip(f.OutputStream))
			return
		case strings.HasPrefix(f.OutputStream, catalog.CustomStreamPrefix) && !strings.HasSuffix(t, "_CL"):
			p.add("InvalidOutputTable", target+".outputStream", "Output stream '%s' must name a custom table ending in '_CL'.", clip(f.OutputStream))
			return
		case strings.HasPrefix(f.OutputStream, catalog.MicrosoftStreamPrefix) && !catalog.IsStandardTable(t):
			p.add("InvalidOutputTable", target+".outputStream", "Output stream '%s' does not name a built-in table.", clip(f.OutputStream))
			return
		}
	}
	for _, dn := range f.Destinations {
		if dests[strings.ToLower(dn)] == nil {
			p.add("InvalidDataFlow", target+".destinations", "Destination '%s' is not defined in properties.destinations.", clip(dn))
		}
	}
	for _, s := range f.Streams {
		if !knownStream(s) {
			streamError(target+".streams", s)
			continue
		}
		in, ok := inputSchema(s)
		if !ok {
			continue // declared but invalid: already reported
		}
		table, ok := f.OutputTable(s)
		if !ok || (f.OutputStream == "" && strings.HasPrefix(s, catalog.CustomStreamPrefix) && !strings.HasSuffix(table, "_CL")) {
			p.add("InvalidOutputTable", target+".outputStream", "Stream '%s' has no output table: set outputStream to 'Custom-<Table>_CL' or 'Microsoft-<Table>'.", clip(s))
			continue
		}
		out, err := a.transformOutput(f, in)
		if err != nil {
			p.add("InvalidTransformQuery", target+".transformKql", "Error occurred while compiling the transformation: %v", err)
			continue
		}
		if i := out.Index("TimeGenerated"); i < 0 || out[i].Type != store.TypeDatetime {
			p.add("InvalidTransformQuery", target+".transformKql",
				"The output of stream '%s' must contain the column 'TimeGenerated' of type datetime; declare it, or set it in transformKql.", clip(s))
			continue
		}
		for _, dn := range f.Destinations {
			ws, ok := workspaces[strings.ToLower(dn)]
			if !ok {
				continue
			}
			t, err := a.cat.Table(ctx, ws.SubscriptionID, ws.ResourceGroup, ws.Name, table)
			if err != nil {
				p.add("InvalidOutputTable", target+".outputStream", "The table '%s' does not exist in workspace '%s'; create it before the rule.", clip(table), ws.Name)
				continue
			}
			ts := t.QuerySchema()
			for _, c := range out {
				j := ts.Index(c.Name)
				if j < 0 {
					continue // columns the table lacks are dropped at ingestion, as in Azure
				}
				if !compatible(c.Type, ts[j].Type) {
					p.add("InvalidOutputTable", target+".outputStream",
						"Column '%s' is %s in the output of stream '%s' but %s in table '%s'.", c.Name, c.Type, clip(s), ts[j].Type, t.Name)
				}
			}
		}
	}
}

// transformOutput returns the output schema of a flow for one input schema.
func (a *API) transformOutput(f *catalog.DataFlow, in store.Schema) (store.Schema, error) {
	if f.IsPassthrough() {
		return in, nil
	}
	if a.transforms == nil {
		return nil, errors.New("only the transformation 'source' is supported on this server")
	}
	return a.transforms.CompileTransform(f.TransformKql, in)
}

func canonicalOf(v string, allowed []string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, true
		}
	}
	return "", false
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
