package activity

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Categories, levels and statuses as Azure's activity log spells them.
const (
	CategoryAdministrative = "Administrative"
	CategorySecurity       = "Security"

	LevelInformational = "Informational"
	LevelWarning       = "Warning"
	LevelError         = "Error"

	StatusSucceeded = "Succeeded"
	StatusFailed    = "Failed"
)

// Operation names Custos records besides the Azure action of a request.
const (
	// OperationSignInFailure is a failed authentication: a rejected bearer
	// token on an API, or a failed token request.
	OperationSignInFailure = "Microsoft.Custos/signIn/action"
)

// Record is one activity log entry. Its JSON encoding (field order fixed by
// this struct, Properties sorted by encoding/json) is what the chain hashes.
type Record struct {
	Time            time.Time         `json:"time"`
	OperationName   string            `json:"operationName"`
	Category        string            `json:"category"`
	Level           string            `json:"level"`
	Status          string            `json:"status"`
	SubStatus       string            `json:"subStatus,omitempty"`
	HTTPStatus      int               `json:"httpStatus,omitempty"`
	Caller          string            `json:"caller,omitempty"`     // object ID (or app ID) of the principal
	CallerType      string            `json:"callerType,omitempty"` // User, ServicePrincipal, ManagedIdentity, Group
	CallerName      string            `json:"callerName,omitempty"`
	CallerIPAddress string            `json:"callerIpAddress,omitempty"`
	CorrelationID   string            `json:"correlationId,omitempty"`
	ResourceID      string            `json:"resourceId,omitempty"` // the scope acted on
	Method          string            `json:"httpMethod,omitempty"`
	Action          string            `json:"authorizationAction,omitempty"` // RBAC action checked
	Properties      map[string]string `json:"properties,omitempty"`          // changed properties, secrets removed
}

// marshal returns the canonical encoding of r.
func (r Record) marshal() ([]byte, error) {
	r.Time = r.Time.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode activity record: %w", err)
	}
	return b, nil
}

// dataWords mark members that carry customer data rather than
// configuration: purge and deleteData filters hold the very values being
// removed, and the activity chain can never be purged. Their elements keep
// column and operator; "value" is redacted.
var dataWords = []string{"filters"}

func isDataName(name string) bool {
	for _, w := range dataWords {
		if strings.EqualFold(name, w) {
			return true
		}
	}
	return false
}

// secretWords mark property names whose values never reach the log.
var secretWords = []string{"secret", "password", "passwd", "token", "key", "credential", "connectionstring", "sas", "certificate", "assertion"}

func isSecretName(name string) bool {
	l := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

const (
	maxProperties    = 64
	maxPropertyBytes = 512
)

// ChangedProperties flattens a JSON request body into the properties a
// record keeps: top-level members and the members of "properties", each as
// compact JSON clipped to 512 bytes; members whose names look secret
// ("secret", "password", "key", "token", ...) are kept as "REDACTED". A body
// that is not a JSON object gives nil.
func ChangedProperties(body []byte) map[string]string {
	var top map[string]json.RawMessage
	if len(body) == 0 || json.Unmarshal(body, &top) != nil {
		return nil
	}
	out := map[string]string{}
	add := func(name string, raw json.RawMessage) {
		if len(out) >= maxProperties {
			return
		}
		if isSecretName(name) {
			out[name] = "REDACTED"
			return
		}
		v := compact(raw)
		if len(v) > maxPropertyBytes {
			v = v[:maxPropertyBytes] + "..."
		}
		out[name] = v
	}
	names := make([]string, 0, len(top))
	for k := range top {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if strings.EqualFold(k, "properties") {
			var props map[string]json.RawMessage
			if json.Unmarshal(top[k], &props) == nil {
				pn := make([]string, 0, len(props))
				for p := range props {
					pn = append(pn, p)
				}
				sort.Strings(pn)
				for _, p := range pn {
					add("properties."+p, redactNested(p, props[p]))
				}
				continue
			}
		}
		add(k, redactNested(k, top[k]))
	}
	return out
}

// redactNested replaces secret-looking members inside a nested object, and
// the values of data-bearing members (see dataWords).
func redactNested(name string, raw json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	if isDataName(name) {
		v = redactDataValues(v)
	}
	v = redactValue(v)
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// redactDataValues replaces every "value"/"values" member of the objects in
// v (an array of filters, or one filter) with "REDACTED".
func redactDataValues(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k := range t {
			if strings.EqualFold(k, "value") || strings.EqualFold(k, "values") {
				t[k] = "REDACTED"
			}
		}
	case []any:
		for i := range t {
			t[i] = redactDataValues(t[i])
		}
	}
	return v
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if isSecretName(k) {
				t[k] = "REDACTED"
			} else {
				t[k] = redactValue(x)
			}
		}
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
	}
	return v
}

func compact(raw json.RawMessage) string {
	var b strings.Builder
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
