package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// adminFile is the bootstrap admin's credentials file, relative to the data
// directory.
const adminFile = "admin.json"

// AdminCredentials is the content of <dataDir>/admin.json: everything a
// client needs to act as the bootstrap admin service principal (Owner at
// "/"). The file is written 0600 at first start and never logged; its
// LogValue leaves the secret out.
type AdminCredentials struct {
	Endpoint       string `json:"endpoint"`
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	WorkspaceName  string `json:"workspaceName"`
	WorkspaceID    string `json:"workspaceId"`
	CAFile         string `json:"caFile"`
}

// LogValue keeps the client secret out of logs.
func (a AdminCredentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", a.Endpoint), slog.String("tenant_id", a.TenantID),
		slog.String("client_id", a.ClientID), slog.String("client_secret", "REDACTED"),
		slog.String("workspace_id", a.WorkspaceID),
	)
}

// String keeps the client secret out of formatted output.
func (a AdminCredentials) String() string {
	return fmt.Sprintf("AdminCredentials{endpoint=%s tenantId=%s clientId=%s clientSecret=REDACTED}", a.Endpoint, a.TenantID, a.ClientID)
}

// GoString keeps the client secret out of %#v.
func (a AdminCredentials) GoString() string { return a.String() }

// ReadAdminCredentials reads an admin.json file strictly.
func ReadAdminCredentials(path string) (AdminCredentials, error) {
	var a AdminCredentials
	data, err := os.ReadFile(path)
	if err != nil {
		return a, fmt.Errorf("read admin credentials: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return AdminCredentials{}, fmt.Errorf("parse admin credentials %s: %w", path, err)
	}
	return a, nil
}

// writeAdminCredentials writes a atomically with mode 0600.
func writeAdminCredentials(path string, a AdminCredentials) error {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("encode admin credentials: %w", err)
	}
	return writeFileAtomic(path, append(data, '\n'), 0o600)
}

// readAdminIfPresent returns the admin credentials file, or ok false when
// it does not exist.
func readAdminIfPresent(path string) (AdminCredentials, bool, error) {
	a, err := ReadAdminCredentials(path)
	if errors.Is(err, fs.ErrNotExist) {
		return AdminCredentials{}, false, nil
	}
	if err != nil {
		return AdminCredentials{}, false, err
	}
	return a, true, nil
}
