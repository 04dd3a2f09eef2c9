package arm

import (
	"context"
	"encoding/json"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/export"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Data export rules (Microsoft.OperationalInsights/workspaces/dataExports,
// api-version 2020-08-01). Custos destinations are a directory
// (destination.resourceId "file:///dir", under an allowed directory) or an
// S3-compatible bucket ("s3://bucket/prefix" with destination.custosS3).
const (
	pDataExports = pWorkspace + "/dataExports"
	pDataExport  = pDataExports + "/{dataExportName}"

	actionDataExportRead   rbac.Action = "Microsoft.OperationalInsights/workspaces/dataExports/read"
	actionDataExportWrite  rbac.Action = "Microsoft.OperationalInsights/workspaces/dataExports/write"
	actionDataExportDelete rbac.Action = "Microsoft.OperationalInsights/workspaces/dataExports/delete"
)

// DataExports validates export destinations and seals their credentials.
// *export.Exporter implements it.
type DataExports interface {
	Prepare(ctx context.Context, old, next *catalog.DataExport, s3 *export.S3Config, secret *string) error
}

var _ DataExports = (*export.Exporter)(nil)

// DataExportRoutes returns the data export rule routes, authorized at the
// workspace. The server registers them beside Routes; with exports nil
// (no exporter configured) writes answer 400 and reads still work.
func (a *API) DataExportRoutes(exports DataExports) []api.Route {
	d := &dataExportAPI{a: a, exports: exports}
	r := func(method, pattern string, act rbac.Action, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act,
			Scope: workspaceScope, Handler: a.wrap(h)}
	}
	return a.withLocks([]api.Route{
		r(http.MethodGet, pDataExports, actionDataExportRead, d.list),
		r(http.MethodGet, pDataExport, actionDataExportRead, d.get),
		r(http.MethodPut, pDataExport, actionDataExportWrite, d.put),
		r(http.MethodDelete, pDataExport, actionDataExportDelete, d.delete),
	})
}

type dataExportAPI struct {
	a       *API
	exports DataExports
}

// s3Wire is destination.custosS3; secretAccessKey is write-only.
type s3Wire struct {
	Endpoint        string  `json:"endpoint"`
	Region          string  `json:"region,omitempty"`
	AccessKeyID     string  `json:"accessKeyId"`
	SecretAccessKey *string `json:"secretAccessKey,omitempty"`
}

type destinationWire struct {
	ResourceID string            `json:"resourceId"`
	Type       string            `json:"type,omitempty"`
	MetaData   map[string]string `json:"metaData,omitempty"`
	CustosS3   *s3Wire           `json:"custosS3,omitempty"`
}

type dataExportPropsWire struct {
	DataExportID     string          `json:"dataExportId"`
	TableNames       []string        `json:"tableNames"`
	Destination      destinationWire `json:"destination"`
	Enable           bool            `json:"enable"`
	CustosFormat     string          `json:"custosFormat"`
	CreatedDate      string          `json:"createdDate"`
	LastModifiedDate string          `json:"lastModifiedDate"`
}

type dataExportWire struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Properties dataExportPropsWire `json:"properties"`
	SystemData *systemData         `json:"systemData,omitempty"`
}

// dataExportRequest is a PUT body; read-only members of a GET answer are
// accepted and ignored.
type dataExportRequest struct {
	Properties *struct {
		DataExportID *string          `json:"dataExportId"`
		TableNames   []string         `json:"tableNames"`
		Destination  *destinationWire `json:"destination"`
		Enable       *bool            `json:"enable"`
		CustosFormat string           `json:"custosFormat"`
		CreatedDate  *string          `json:"createdDate"`
		LastModified *string          `json:"lastModifiedDate"`
	} `json:"properties"`
	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

func toDataExportWire(d *catalog.DataExport) dataExportWire {
	dest := destinationWire{ResourceID: d.Destination, Type: "StorageAccount"}
	var cfg struct {
		S3 *export.S3Config `json:"s3"`
	}
	if json.Unmarshal([]byte(d.DestConfig), &cfg) == nil && cfg.S3 != nil {
		dest.CustosS3 = &s3Wire{Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region, AccessKeyID: cfg.S3.AccessKeyID}
	}
	tables := d.TableNames
	if tables == nil {
		tables = []string{}
	}
	return dataExportWire{ID: d.ID(), Name: d.Name, Type: catalog.TypeDataExport,
		Properties: dataExportPropsWire{DataExportID: d.ExportID, TableNames: tables, Destination: dest, Enable: d.Enabled,
			CustosFormat: d.Format, CreatedDate: wireTime(d.Audit.CreatedAt), LastModifiedDate: wireTime(d.Audit.ModifiedAt)},
		SystemData: toSystemData(d.Audit)}
}

func (d *dataExportAPI) list(w http.ResponseWriter, r *http.Request) error {
	xs, err := d.a.cat.DataExports(r.Context(), string(workspaceScope(r)))
	if err != nil {
		return err
	}
	out := list[dataExportWire]{Value: []dataExportWire{}}
	for i := range xs {
		out.Value = append(out.Value, toDataExportWire(&xs[i]))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (d *dataExportAPI) get(w http.ResponseWriter, r *http.Request) error {
	x, err := d.a.cat.DataExport(r.Context(), string(workspaceScope(r)), r.PathValue("dataExportName"))
	if err != nil {
		return err
	}
	writeGet(w, "", toDataExportWire(&x))
	return nil
}

func (d *dataExportAPI) put(w http.ResponseWriter, r *http.Request) error {
	var req dataExportRequest
	if err := api.DecodeJSON(r, &req, d.a.maxBody); err != nil {
		return err
	}
	p := req.Properties
	if p == nil || len(p.TableNames) == 0 {
		return catalog.Invalid("InvalidParameter", "properties.tableNames", "The property 'properties.tableNames' is required.")
	}
	if p.Destination == nil || p.Destination.ResourceID == "" {
		return catalog.Invalid("InvalidParameter", "properties.destination.resourceId",
			"The property 'properties.destination.resourceId' is required: file:///directory or s3://bucket/prefix in Custos.")
	}
	if len(p.Destination.MetaData) > 0 {
		return catalog.Invalid("InvalidParameter", "properties.destination.metaData",
			"destination.metaData (an event hub name) does not apply: Custos exports to a directory or an S3-compatible bucket.")
	}
	if d.exports == nil {
		return catalog.Invalid("FeatureNotEnabled", "properties.destination", "Data export is not enabled on this server.")
	}
	x := catalog.DataExport{Name: r.PathValue("dataExportName"), TableNames: p.TableNames, Destination: p.Destination.ResourceID,
		Format: p.CustosFormat, Enabled: p.Enable == nil || *p.Enable}
	var s3 *export.S3Config
	var secret *string
	if c := p.Destination.CustosS3; c != nil {
		s3 = &export.S3Config{Endpoint: c.Endpoint, Region: c.Region, AccessKeyID: c.AccessKeyID}
		secret = c.SecretAccessKey
	}
	out, created, err := d.a.cat.PutDataExport(r.Context(), string(workspaceScope(r)), x, actor(r),
		func(ctx context.Context, old, next *catalog.DataExport) error {
			return d.exports.Prepare(ctx, old, next, s3, secret)
		})
	if err != nil {
		return err
	}
	writePut(w, created, "", toDataExportWire(&out))
	return nil
}

func (d *dataExportAPI) delete(w http.ResponseWriter, r *http.Request) error {
	deleted, err := d.a.cat.DeleteDataExport(r.Context(), string(workspaceScope(r)), r.PathValue("dataExportName"))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
