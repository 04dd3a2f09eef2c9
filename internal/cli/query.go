package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	querylogs "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"
)

// QueryOptions are the optional parts of a query.
type QueryOptions struct {
	Timespan             string   // ISO 8601 duration (PT1H) or start/end; empty: no extra time filter
	AdditionalWorkspaces []string // customer IDs of further workspaces
	Statistics           bool     // ask for the statistics object
	WaitSeconds          int      // server-side timeout (Prefer: wait); 0: the server default
}

// QueryResult is a query answer with values as JSON decodes them: numbers as
// json.Number (exact, also for long values beyond 2^53), dynamic values as
// maps and slices, null as nil.
type QueryResult struct {
	Tables     []ResultTable   `json:"tables"`
	Error      json.RawMessage `json:"error,omitempty"`      // a partial error the server reported with the rows
	Statistics json.RawMessage `json:"statistics,omitempty"` // only when asked for
}

// ResultTable is one table of a QueryResult.
type ResultTable struct {
	Name    string         `json:"name"`
	Columns []ResultColumn `json:"columns"`
	Rows    [][]any        `json:"rows"`
}

// ResultColumn is one column of a ResultTable; Type is a KQL type name.
type ResultColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Query runs a KQL query against a workspace (customer ID) through the Azure
// SDK's Log Analytics query client.
func (c *Client) Query(ctx context.Context, workspaceID, kql string, o QueryOptions) (QueryResult, error) {
	if strings.TrimSpace(kql) == "" {
		return QueryResult{}, fmt.Errorf("empty query")
	}
	qc, err := c.queryClient()
	if err != nil {
		return QueryResult{}, err
	}
	body := querylogs.QueryBody{Query: &kql, AdditionalWorkspaces: o.AdditionalWorkspaces}
	if o.Timespan != "" {
		ts := querylogs.TimeInterval(o.Timespan)
		body.Timespan = &ts
	}
	var opts *querylogs.QueryWorkspaceOptions
	if o.Statistics || o.WaitSeconds > 0 {
		qo := &querylogs.QueryOptions{}
		if o.Statistics {
			qo.Statistics = &o.Statistics
		}
		if o.WaitSeconds > 0 {
			qo.Wait = &o.WaitSeconds
		}
		opts = &querylogs.QueryWorkspaceOptions{Options: qo}
	}
	var raw *http.Response
	resp, err := qc.QueryWorkspace(policy.WithCaptureResponse(ctx, &raw), workspaceID, body, opts)
	if err != nil {
		return QueryResult{}, Explain(err)
	}
	res := QueryResult{Tables: make([]ResultTable, 0, len(resp.Tables)), Statistics: resp.Statistics}
	if resp.Error != nil {
		res.Error = json.RawMessage(resp.Error.Error())
		if !json.Valid(res.Error) {
			res.Error, _ = json.Marshal(map[string]string{"code": resp.Error.Code})
		}
	}
	// The SDK decodes numbers as float64, which loses long values beyond
	// 2^53. The response body is buffered, so decode the tables again with
	// exact numbers; the SDK's decoding is the fallback.
	if tables, ok := exactTables(raw); ok {
		res.Tables = tables
		return res, nil
	}
	for _, t := range resp.Tables {
		rt := ResultTable{Name: deref(t.Name), Columns: make([]ResultColumn, 0, len(t.Columns)), Rows: make([][]any, 0, len(t.Rows))}
		for _, col := range t.Columns {
			typ := ""
			if col.Type != nil {
				typ = string(*col.Type)
			}
			rt.Columns = append(rt.Columns, ResultColumn{Name: deref(col.Name), Type: typ})
		}
		for _, r := range t.Rows {
			rt.Rows = append(rt.Rows, []any(r))
		}
		res.Tables = append(res.Tables, rt)
	}
	return res, nil
}

// exactTables re-reads a captured, buffered query response with numbers as
// json.Number.
func exactTables(resp *http.Response) ([]ResultTable, bool) {
	if resp == nil || resp.Body == nil {
		return nil, false
	}
	seeker, ok := resp.Body.(io.Seeker)
	if !ok {
		return nil, false
	}
	if _, err := seeker.Seek(0, io.SeekStart); err != nil {
		return nil, false
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var doc struct {
		Tables []ResultTable `json:"tables"`
	}
	if err := dec.Decode(&doc); err != nil || doc.Tables == nil {
		return nil, false
	}
	for i := range doc.Tables {
		if doc.Tables[i].Rows == nil {
			doc.Tables[i].Rows = [][]any{}
		}
	}
	return doc.Tables, true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TextTable renders one result table for the terminal.
func (t ResultTable) TextTable() *Table {
	out := &Table{Columns: make([]string, len(t.Columns)), Rows: make([][]string, 0, len(t.Rows))}
	for i, c := range t.Columns {
		out.Columns[i] = c.Name
	}
	for _, r := range t.Rows {
		row := make([]string, len(t.Columns))
		for i := range row {
			if i < len(r) {
				typ := ""
				if i < len(t.Columns) {
					typ = t.Columns[i].Type
				}
				row[i] = FormatValue(r[i], typ)
			}
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

// FormatValue renders one result value as text: null as empty, numbers
// without exponent where they are integral (int and long columns arrive as
// JSON numbers), dynamic values as compact JSON.
func FormatValue(v any, kqlType string) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64:
		switch {
		case math.IsNaN(x):
			return "NaN"
		case math.IsInf(x, 1):
			return "Infinity"
		case math.IsInf(x, -1):
			return "-Infinity"
		case kqlType == "int" || kqlType == "long" || (x == math.Trunc(x) && math.Abs(x) < 1e21):
			return strconv.FormatFloat(x, 'f', -1, 64)
		case math.Abs(x) >= 1e-5 && math.Abs(x) < 1e21:
			return strconv.FormatFloat(x, 'f', -1, 64)
		default:
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}
