package query

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Query timeouts of the Prefer: wait option, as Azure's.
const (
	DefaultWait = 180 * time.Second
	MaxWait     = 600 * time.Second
)

// Preferences are the options of the Prefer request header(s).
type Preferences struct {
	Wait              time.Duration // wait=N seconds; DefaultWait when absent, at most MaxWait
	IncludeStatistics bool          // include-statistics=true
	IncludeRender     bool          // include-render=true
	IncludeDataSource bool          // include-dataSources=true
	// IncludePermissions (include-permissions=true) adds the "permissions"
	// section: the tables RBAC filtered out (denyTables).
	IncludePermissions bool
}

// ParsePrefer reads every Prefer header value: comma-separated preferences
// (RFC 7240), names case-insensitive. Unknown or malformed preferences are
// ignored, as RFC 7240 asks.
func ParsePrefer(h http.Header) Preferences {
	p := Preferences{Wait: DefaultWait}
	for _, line := range h.Values("Prefer") {
		for _, item := range strings.Split(line, ",") {
			item, _, _ = strings.Cut(item, ";") // drop preference parameters
			name, val, _ := strings.Cut(strings.TrimSpace(item), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch name {
			case "wait":
				if n, err := strconv.ParseFloat(val, 64); err == nil && n > 0 {
					if n >= MaxWait.Seconds() {
						p.Wait = MaxWait
					} else {
						p.Wait = time.Duration(n * float64(time.Second))
					}
				}
			case "include-statistics":
				p.IncludeStatistics = strings.EqualFold(val, "true")
			case "include-render":
				p.IncludeRender = strings.EqualFold(val, "true")
			case "include-datasources":
				p.IncludeDataSource = strings.EqualFold(val, "true")
			case "include-permissions":
				p.IncludePermissions = strings.EqualFold(val, "true")
			}
		}
	}
	return p
}
