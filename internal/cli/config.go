package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// AdminFileName is the name of the client configuration file that `custos
// serve` writes into its data directory on first start.
const AdminFileName = "admin.json"

// DefaultDataDir is the data directory used when neither --data-dir nor
// CUSTOS_DATA_DIR is given; it matches the server's default.
const DefaultDataDir = "custos-data"

// Errors returned by configuration loading and validation.
var (
	// ErrNoConfig is returned by Validate when the configuration lacks what a
	// command needs; the message says which setting and how to provide it.
	ErrNoConfig = errors.New("incomplete client configuration")
)

// Secret is a credential held in memory. Its String and LogValue forms are
// "REDACTED" so that it cannot leak through fmt or log/slog by accident; use
// Reveal where the value is really needed.
type Secret string

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString implements fmt.GoStringer without revealing the secret.
func (s Secret) GoString() string { return s.String() }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// Config is the client configuration. The JSON form is admin.json, written
// by the server with exactly these keys.
type Config struct {
	Endpoint       string `json:"endpoint"`       // https://host:port of the Custos server
	TenantID       string `json:"tenantId"`       // tenant the service principal lives in
	ClientID       string `json:"clientId"`       // service principal application (client) ID
	ClientSecret   Secret `json:"clientSecret"`   // service principal secret
	SubscriptionID string `json:"subscriptionId"` // default subscription for control-plane verbs
	ResourceGroup  string `json:"resourceGroup"`  // default resource group
	WorkspaceName  string `json:"workspaceName"`  // default workspace (ARM name)
	WorkspaceID    string `json:"workspaceId"`    // default workspace customer ID (GUID), for queries
	CAFile         string `json:"caFile"`         // PEM CA bundle to trust instead of the system roots
}

// Environment variables read by FromEnv, by Config field.
const (
	EnvDataDir       = "CUSTOS_DATA_DIR"
	EnvEndpoint      = "CUSTOS_ENDPOINT"
	EnvTenant        = "CUSTOS_TENANT"
	EnvClientID      = "CUSTOS_CLIENT_ID"
	EnvClientSecret  = "CUSTOS_CLIENT_SECRET"
	EnvCAFile        = "CUSTOS_CA_FILE"
	EnvSubscription  = "CUSTOS_SUBSCRIPTION"
	EnvResourceGroup = "CUSTOS_RESOURCE_GROUP"
	EnvWorkspace     = "CUSTOS_WORKSPACE"
	EnvWorkspaceID   = "CUSTOS_WORKSPACE_ID"
)

// LoadFile reads a client configuration file such as admin.json. Unknown keys
// are rejected. A relative caFile is resolved against the file's directory
// when it exists there, else against the working directory. The second result
// is false, with a nil error, when the file does not exist.
func LoadFile(path string) (Config, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, false, nil
	}
	if err != nil {
		return Config{}, false, fmt.Errorf("read client configuration: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, false, fmt.Errorf("client configuration %s: %w", path, err)
	}
	if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
		rel := filepath.Join(filepath.Dir(path), c.CAFile)
		if _, err := os.Stat(rel); err == nil {
			c.CAFile = rel
		}
	}
	return c, true, nil
}

// ParseConfig decodes a client configuration strictly: unknown keys, trailing
// data and wrong types are errors.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("decode: data after the JSON object")
	}
	return c, nil
}

// FromEnv returns the settings given as CUSTOS_* environment variables.
func FromEnv(getenv func(string) string) Config {
	return Config{
		Endpoint:       getenv(EnvEndpoint),
		TenantID:       getenv(EnvTenant),
		ClientID:       getenv(EnvClientID),
		ClientSecret:   Secret(getenv(EnvClientSecret)),
		SubscriptionID: getenv(EnvSubscription),
		ResourceGroup:  getenv(EnvResourceGroup),
		WorkspaceName:  getenv(EnvWorkspace),
		WorkspaceID:    getenv(EnvWorkspaceID),
		CAFile:         getenv(EnvCAFile),
	}
}

// Merge returns c with every non-empty field of over applied on top.
func (c Config) Merge(over Config) Config {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.Endpoint, over.Endpoint)
	set(&c.TenantID, over.TenantID)
	set(&c.ClientID, over.ClientID)
	if over.ClientSecret != "" {
		c.ClientSecret = over.ClientSecret
	}
	set(&c.SubscriptionID, over.SubscriptionID)
	set(&c.ResourceGroup, over.ResourceGroup)
	set(&c.WorkspaceName, over.WorkspaceName)
	set(&c.WorkspaceID, over.WorkspaceID)
	set(&c.CAFile, over.CAFile)
	return c
}

// Need says which parts of the configuration a command requires.
type Need int

// Requirement flags for Validate.
const (
	NeedCredentials   Need = 1 << iota // endpoint, tenant, client ID and secret
	NeedResourceGroup                  // subscription and resource group
)

// Validate checks that c has what a command needs and that the endpoint is an
// HTTPS URL. source names where the configuration was looked for, so that the
// error can say how to fix it.
func (c Config) Validate(need Need, source string) error {
	var missing []string
	if need&NeedCredentials != 0 {
		if c.Endpoint == "" {
			missing = append(missing, "endpoint (--endpoint or "+EnvEndpoint+")")
		}
		if c.TenantID == "" {
			missing = append(missing, "tenant (--tenant or "+EnvTenant+")")
		}
		if c.ClientID == "" {
			missing = append(missing, "client ID (--client-id or "+EnvClientID+")")
		}
		if c.ClientSecret == "" {
			missing = append(missing, "client secret ("+EnvClientSecret+")")
		}
	}
	if need&NeedResourceGroup != 0 {
		if c.SubscriptionID == "" {
			missing = append(missing, "subscription (--subscription or "+EnvSubscription+")")
		}
		if c.ResourceGroup == "" {
			missing = append(missing, "resource group (--resource-group or "+EnvResourceGroup+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s; %s", ErrNoConfig, strings.Join(missing, ", "), source)
	}
	if c.Endpoint != "" {
		if _, err := ParseEndpoint(c.Endpoint); err != nil {
			return err
		}
	}
	return nil
}

// ParseEndpoint checks that endpoint is an absolute https URL without query,
// fragment or credentials, and returns it without a trailing slash.
func ParseEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	switch {
	case u.Scheme != "https":
		return "", fmt.Errorf("endpoint %q: must be an https:// URL (Custos serves only HTTPS)", endpoint)
	case u.Host == "":
		return "", fmt.Errorf("endpoint %q: no host", endpoint)
	case u.User != nil:
		return "", fmt.Errorf("endpoint %q: must not contain credentials", endpoint)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("endpoint %q: must not have a query or fragment", endpoint)
	}
	return strings.TrimRight(endpoint, "/"), nil
}

// InsecurePermissions reports whether the configuration file at path can be
// read or written by users other than its owner.
func InsecurePermissions(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	return fi.Mode().Perm()&0o077 != 0
}
