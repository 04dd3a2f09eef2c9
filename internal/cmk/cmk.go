package cmk

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/store"
)

// Key providers a cluster's key can live in (keyVaultProperties.custosProvider).
const (
	// ProviderAzureKeyVault is an Azure Key Vault (or Managed HSM) RSA key:
	// keyVaultUri https://{vault}.vault.azure.net, keyName, keyVersion. It
	// is the default for an https keyVaultUri, as in Azure.
	ProviderAzureKeyVault = "azureKeyVault"
	// ProviderTransit is a HashiCorp Vault or OpenBao Transit key:
	// keyVaultUri is the server address, keyName the Transit key.
	ProviderTransit = "transit"
	// ProviderFile is a 256-bit key file (crypt.FileKey) under the
	// configured file-key directory: keyVaultUri file:///{dir}, keyName the
	// file name, keyVersion an optional ".{version}" suffix of it.
	ProviderFile = "file"
	// ProviderPKCS11 is an AES key in a PKCS#11 token (build tag pkcs11):
	// keyName is the key label, keyVersion an optional ".{version}" suffix.
	ProviderPKCS11 = "pkcs11"
)

// Errors.
var (
	// ErrInvalid is wrapped by every *Error about a bad key description.
	ErrInvalid = errors.New("cmk: invalid key description")
	// ErrNotBuilt is returned for a PKCS#11 key by a build without the
	// pkcs11 tag.
	ErrNotBuilt = errors.New("cmk: PKCS#11 support is not built in (build tag pkcs11)")
)

// Error is a refused key description or a key that cannot be used; it
// implements api.Coded (without importing api).
type Error struct {
	Code    string // Azure-style code
	Kind    string // api.Kind: "invalid" (400) or "unavailable" (503)
	Target  string
	Message string // client-facing; never holds a credential
	Err     error
}

func (e *Error) Error() string { return e.Message }

// AzureError implements api.Coded.
func (e *Error) AzureError() (string, string) { return e.Code, e.Kind }

// Unwrap returns ErrInvalid for invalid descriptions and the cause.
func (e *Error) Unwrap() []error {
	if e.Kind == "invalid" {
		return []error{ErrInvalid, e.Err}
	}
	return []error{e.Err}
}

func invalid(target, format string, args ...any) *Error {
	return &Error{Code: "InvalidParameter", Kind: "invalid", Target: target, Message: fmt.Sprintf(format, args...)}
}

// Config is the non-secret provider configuration stored with a cluster
// (catalog.Cluster.KeyConfig, JSON). Only the member of the cluster's
// provider is set.
type Config struct {
	Transit *TransitConfig `json:"transit,omitempty"`
	Azure   *AzureConfig   `json:"azure,omitempty"`
	PKCS11  *PKCS11Config  `json:"pkcs11,omitempty"`
	File    *FileConfig    `json:"file,omitempty"`
}

// TransitConfig is a Transit key's connection. The credential (a token, or
// the AppRole secret ID when RoleID is set) is the sealed secret.
type TransitConfig struct {
	Mount        string `json:"mount,omitempty"`
	Namespace    string `json:"namespace,omitempty"`
	CAFile       string `json:"caFile,omitempty"`
	RoleID       string `json:"roleId,omitempty"`
	AppRoleMount string `json:"appRoleMount,omitempty"`
}

// AzureConfig is the Entra ID service principal Custos uses for Key Vault;
// its client secret is the sealed secret.
type AzureConfig struct {
	TenantID      string `json:"tenantId"`
	ClientID      string `json:"clientId"`
	AuthorityHost string `json:"authorityHost,omitempty"`
}

// PKCS11Config names the module (one of Options.PKCS11Modules) and token;
// the user PIN is the sealed secret.
type PKCS11Config struct {
	Module     string `json:"module"`
	TokenLabel string `json:"tokenLabel"`
}

// FileConfig records the key ID of the key file when the cluster was
// written, so that a file replaced by another key is refused and a
// provider can be built while the file is unreadable (revoked).
type FileConfig struct {
	KeyID string `json:"keyId"`
}

// KeySpec is a cluster's key as a client describes it.
type KeySpec struct {
	Provider    string // "" means inferred from KeyVaultURI
	KeyVaultURI string
	KeyName     string
	KeyVersion  string
	KeyRSASize  int
	Config      Config
	// Secret is the provider credential; nil keeps the one sealed before
	// (when the provider and URI are unchanged).
	Secret crypt.Secret
}

// KeyStore is the part of the store that keys workspaces. *store.DB
// implements it.
type KeyStore interface {
	SetWorkspaceKeyProvider(ctx context.Context, workspaceID string, p crypt.KeyProvider) error
	SetWorkspaceEncryption(ctx context.Context, workspaceID string, enc store.WorkspaceEncryption) error
	EncryptionStatus(ctx context.Context, workspaceID string) (store.EncryptionStatus, error)
}

// Options configures New.
type Options struct {
	// Store keys the workspaces. Required.
	Store KeyStore
	// Platform seals provider credentials. Required.
	Platform *crypt.PlatformKey
	// FileKeyDir is the only directory file keys may be read from; ""
	// refuses file keys (a cluster writer must not name arbitrary files).
	FileKeyDir string
	// PKCS11Modules are the PKCS#11 libraries a cluster may name; empty
	// refuses PKCS#11 keys (loading a library runs its code).
	PKCS11Modules []string
	// InsecureTransitHTTP allows plain-http Transit addresses (a local dev
	// server only).
	InsecureTransitHTTP bool
	// HTTPClient replaces the clients of remote providers (tests).
	HTTPClient *http.Client
	// Logger receives key events; never credentials. nil discards.
	Logger *slog.Logger
}

// Manager builds key providers from clusters and applies them to
// workspaces. Safe for concurrent use.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex // guards pkcs11 (open sessions, closed by Close)
	closer []func() error
}

// New checks opts.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Platform == nil {
		return nil, errors.New("cmk: Store and Platform are required")
	}
	if opts.FileKeyDir != "" {
		abs, err := filepath.Abs(opts.FileKeyDir)
		if err != nil {
			return nil, fmt.Errorf("cmk: file key directory: %w", err)
		}
		opts.FileKeyDir = abs
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: opts, log: log}, nil
}

// Close releases provider sessions (PKCS#11).
func (m *Manager) Close() error {
	m.mu.Lock()
	cs := m.closer
	m.closer = nil
	m.mu.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func secretAAD(clusterID string) []byte {
	return []byte("custos/cluster-key-secret/v1\x00" + strings.ToLower(clusterID))
}

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$`)

// Prepare validates spec for the cluster clusterID and returns what the
// catalog stores: the provider, its configuration (JSON) and the sealed
// credential. prev is the stored cluster (nil if new): its credential is
// kept when spec.Secret is nil and the provider and URI are unchanged.
func (m *Manager) Prepare(clusterID string, spec KeySpec, prev *catalog.Cluster) (provider, config string, sealed []byte, err error) {
	u, err := url.Parse(spec.KeyVaultURI)
	if err != nil || u.Scheme == "" || spec.KeyVaultURI == "" {
		return "", "", nil, invalid("properties.keyVaultProperties.keyVaultUri", "keyVaultUri '%s' is not an absolute URI.", trunc(spec.KeyVaultURI))
	}
	provider = spec.Provider
	if provider == "" {
		switch u.Scheme {
		case "https":
			provider = ProviderAzureKeyVault
		case "file":
			provider = ProviderFile
		}
	}
	if !keyNameRE.MatchString(spec.KeyName) || strings.Contains(spec.KeyName, "..") {
		return "", "", nil, invalid("properties.keyVaultProperties.keyName", "keyName '%s' is invalid: use letters, digits, '-', '_' and '.'.", trunc(spec.KeyName))
	}
	if spec.KeyVersion != "" && (!keyNameRE.MatchString(spec.KeyVersion) || strings.Contains(spec.KeyVersion, "..")) {
		return "", "", nil, invalid("properties.keyVaultProperties.keyVersion", "keyVersion '%s' is invalid.", trunc(spec.KeyVersion))
	}
	cfg := Config{}
	needSecret := true
	switch provider {
	case ProviderAzureKeyVault:
		// The host needs a domain: the token audience is https://{domain}
		// (Provider derives it), so https://localhost could never be used.
		if u.Scheme != "https" || !strings.Contains(u.Hostname(), ".") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", "", nil, invalid("properties.keyVaultProperties.keyVaultUri", "keyVaultUri must be https://{vault}.vault.azure.net for Azure Key Vault.")
		}
		a := spec.Config.Azure
		if a == nil || !catalog.IsGUID(a.TenantID) || a.ClientID == "" {
			return "", "", nil, invalid("properties.keyVaultProperties.custosAzure",
				"An Azure Key Vault key needs custosAzure {tenantId, clientId} and custosSecret (the client secret) of a service principal with wrapKey and unwrapKey on the key.")
		}
		cfg.Azure = &AzureConfig{TenantID: a.TenantID, ClientID: a.ClientID, AuthorityHost: a.AuthorityHost}
	case ProviderTransit:
		if (u.Scheme != "https" && !(u.Scheme == "http" && m.opts.InsecureTransitHTTP)) || u.Host == "" || u.RawQuery != "" {
			return "", "", nil, invalid("properties.keyVaultProperties.keyVaultUri", "keyVaultUri must be the https address of the Vault or OpenBao server.")
		}
		t := TransitConfig{}
		if spec.Config.Transit != nil {
			t = *spec.Config.Transit
		}
		if strings.Contains(t.Mount, "..") || strings.Contains(t.AppRoleMount, "..") {
			return "", "", nil, invalid("properties.keyVaultProperties.custosTransit", "mount paths must not contain '..'.")
		}
		cfg.Transit = &t
	case ProviderFile:
		if m.opts.FileKeyDir == "" {
			return "", "", nil, invalid("properties.keyVaultProperties.custosProvider", "File keys are disabled on this server (setting keys.fileKeyDir).")
		}
		if u.Scheme != "file" || u.Host != "" || filepath.Clean(u.Path) != m.opts.FileKeyDir {
			return "", "", nil, invalid("properties.keyVaultProperties.keyVaultUri", "keyVaultUri must be file://%s (the server's key directory).", m.opts.FileKeyDir)
		}
		fk, err := crypt.OpenFileKey(m.filePath(spec.KeyName, spec.KeyVersion))
		if err != nil {
			return "", "", nil, &Error{Code: "KeyVaultKeyNotAccessible", Kind: "invalid", Target: "properties.keyVaultProperties.keyName",
				Message: fmt.Sprintf("The key file '%s' cannot be read: %v.", filepath.Base(m.filePath(spec.KeyName, spec.KeyVersion)), errors.Unwrap(err)), Err: err}
		}
		cfg.File = &FileConfig{KeyID: fk.KeyID()}
		needSecret = false
	case ProviderPKCS11:
		p := spec.Config.PKCS11
		if p == nil || p.TokenLabel == "" || !slices.Contains(m.opts.PKCS11Modules, p.Module) {
			return "", "", nil, invalid("properties.keyVaultProperties.custosPkcs11",
				"A PKCS#11 key needs custosPkcs11 {module, tokenLabel} with a module the server allows (setting keys.pkcs11Modules) and custosSecret (the user PIN).")
		}
		if !pkcs11Built {
			return "", "", nil, &Error{Code: "InvalidParameter", Kind: "invalid", Target: "properties.keyVaultProperties.custosProvider", Message: ErrNotBuilt.Error(), Err: ErrNotBuilt}
		}
		cfg.PKCS11 = &PKCS11Config{Module: p.Module, TokenLabel: p.TokenLabel}
	default:
		return "", "", nil, invalid("properties.keyVaultProperties.custosProvider",
			"Unknown key provider '%s'; use azureKeyVault, transit, file or pkcs11.", trunc(provider))
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", "", nil, fmt.Errorf("encode key config: %w", err)
	}
	if needSecret {
		switch {
		case len(spec.Secret) > 0:
			if len(spec.Secret) > 8192 {
				return "", "", nil, invalid("properties.keyVaultProperties.custosSecret", "custosSecret is longer than 8192 bytes.")
			}
			if sealed, err = m.opts.Platform.Seal(spec.Secret, secretAAD(clusterID)); err != nil {
				return "", "", nil, fmt.Errorf("seal key credential: %w", err)
			}
		case prev != nil && prev.KeyProvider == provider && strings.EqualFold(prev.KeyVaultURI, spec.KeyVaultURI) && len(prev.KeySecretSealed) > 0:
			sealed = prev.KeySecretSealed
		default:
			return "", "", nil, invalid("properties.keyVaultProperties.custosSecret",
				"The %s key needs its credential in custosSecret (write-only: never returned).", provider)
		}
	}
	return provider, string(b), sealed, nil
}

func (m *Manager) filePath(name, version string) string {
	if version != "" {
		name += "." + version
	}
	return filepath.Join(m.opts.FileKeyDir, name)
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Provider builds the key provider of a cluster. Remote providers make no
// request here; a file key whose file is unreadable still yields a provider
// (every use then fails with crypt.ErrKeyUnavailable until it is back).
func (m *Manager) Provider(cl *catalog.Cluster) (crypt.KeyProvider, error) {
	if !cl.HasKey() {
		return nil, invalid("properties.keyVaultProperties", "The cluster '%s' has no customer-managed key.", cl.Name)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(cl.KeyConfig), &cfg); err != nil {
		return nil, fmt.Errorf("cluster %s: decode key config: %w", cl.Name, err)
	}
	var secret crypt.Secret
	if len(cl.KeySecretSealed) > 0 {
		raw, err := m.opts.Platform.Open(cl.KeySecretSealed, secretAAD(cl.ID()))
		if err != nil {
			return nil, fmt.Errorf("cluster %s: open key credential: %w", cl.Name, err)
		}
		secret = crypt.Secret(raw)
	}
	switch cl.KeyProvider {
	case ProviderFile:
		if cfg.File == nil || m.opts.FileKeyDir == "" {
			return nil, invalid("properties.keyVaultProperties", "File keys are disabled on this server (setting keys.fileKeyDir).")
		}
		return &fileKey{path: m.filePath(cl.KeyName, cl.KeyVersion), id: cfg.File.KeyID}, nil
	case ProviderTransit:
		t := TransitConfig{}
		if cfg.Transit != nil {
			t = *cfg.Transit
		}
		o := crypt.TransitOptions{Address: cl.KeyVaultURI, Mount: t.Mount, Key: cl.KeyName, Namespace: t.Namespace,
			CAFile: t.CAFile, AppRoleMount: t.AppRoleMount, HTTPClient: m.opts.HTTPClient, InsecureHTTP: m.opts.InsecureTransitHTTP}
		if t.RoleID != "" {
			o.RoleID, o.SecretID = t.RoleID, secret
		} else {
			o.Token = secret
		}
		return crypt.NewTransit(o)
	case ProviderAzureKeyVault:
		if cfg.Azure == nil {
			return nil, fmt.Errorf("cluster %s: no Azure credential configured", cl.Name)
		}
		return m.azureKeyVault(cl, cfg.Azure, secret)
	case ProviderPKCS11:
		if cfg.PKCS11 == nil || !slices.Contains(m.opts.PKCS11Modules, cfg.PKCS11.Module) {
			return nil, invalid("properties.keyVaultProperties.custosPkcs11", "The PKCS#11 module is not allowed on this server.")
		}
		label := cl.KeyName
		if cl.KeyVersion != "" {
			label += "." + cl.KeyVersion
		}
		p, closeFn, err := newPKCS11(cfg.PKCS11.Module, cfg.PKCS11.TokenLabel, label, secret)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.closer = append(m.closer, closeFn)
		m.mu.Unlock()
		return p, nil
	}
	return nil, fmt.Errorf("cluster %s: unknown key provider %q", cl.Name, cl.KeyProvider)
}

// azureKeyVault builds an AzureKeyVault provider whose tokens come from a
// client-secret credential for the vault's audience
// (https://vault.azure.net for *.vault.azure.net, and so on).
func (m *Manager) azureKeyVault(cl *catalog.Cluster, a *AzureConfig, secret crypt.Secret) (crypt.KeyProvider, error) {
	u, err := url.Parse(cl.KeyVaultURI)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("cluster %s: bad keyVaultUri", cl.Name)
	}
	keyURL := "https://" + u.Host + "/keys/" + url.PathEscape(cl.KeyName)
	if cl.KeyVersion != "" {
		keyURL += "/" + url.PathEscape(cl.KeyVersion)
	}
	_, suffix, ok := strings.Cut(u.Hostname(), ".")
	if !ok {
		return nil, fmt.Errorf("cluster %s: keyVaultUri host has no domain", cl.Name)
	}
	scope := "https://" + suffix + "/.default"
	co := azcore.ClientOptions{}
	if a.AuthorityHost != "" {
		co.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: a.AuthorityHost}
	}
	if m.opts.HTTPClient != nil {
		co.Transport = m.opts.HTTPClient
	}
	cred, err := azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, string(secret), &azidentity.ClientSecretCredentialOptions{ClientOptions: co})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: key vault credential: %w", cl.Name, err)
	}
	return crypt.NewAzureKeyVault(crypt.AzureKeyVaultOptions{
		KeyURL:     keyURL,
		HTTPClient: m.opts.HTTPClient,
		Token: func(ctx context.Context) (crypt.Secret, error) {
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
			if err != nil {
				return nil, fmt.Errorf("%w: key vault token: %w", crypt.ErrKeyUnavailable, err)
			}
			return crypt.Secret(tok.Token), nil
		},
	})
}

// Probe checks that p wraps and unwraps (a fresh random key), so a cluster
// is not accepted with a key Custos cannot use.
func (m *Manager) Probe(ctx context.Context, p crypt.KeyProvider) error {
	k := make([]byte, crypt.KeySize)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("probe key: %w", err)
	}
	defer crypt.Wipe(k)
	aad := []byte("custos/cmk-probe/v1")
	w, err := p.WrapKey(ctx, k, aad)
	if err == nil {
		var got []byte
		if got, err = p.UnwrapKey(ctx, w, aad); err == nil {
			crypt.Wipe(got)
		}
	}
	if err != nil {
		return &Error{Code: "KeyVaultKeyNotAccessible", Kind: "invalid", Target: "properties.keyVaultProperties",
			Message: "The customer-managed key cannot be used: wrapping and unwrapping a test key failed (" + safeCause(err) + ").", Err: err}
	}
	return nil
}

// safeCause describes a provider error class without its text (which may
// carry URLs or KMS answers).
func safeCause(err error) string {
	switch {
	case errors.Is(err, crypt.ErrKeyUnavailable):
		return "key unavailable: disabled, deleted, access removed or unreachable"
	case errors.Is(err, crypt.ErrAuth):
		return "the key rejected the test wrapping"
	}
	// An answer the providers do not classify (Vault answers a wrong AppRole
	// secret ID with 400): its status, never its text.
	var te *crypt.TransitError
	var ae *crypt.AzureKeyVaultError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("the key service refused the request: HTTP %d", te.Status)
	case errors.As(err, &ae):
		return fmt.Sprintf("the key service refused the request: HTTP %d", ae.Status)
	}
	return "provider error"
}

// Link keys the workspace (its customer ID) with the cluster's key: the
// workspace key is re-wrapped under it (no data is rewritten), with double
// encryption when the cluster has it. Linking a workspace already under
// the same key re-wraps it under the key's current version (rotation).
func (m *Manager) Link(ctx context.Context, workspaceID string, cl *catalog.Cluster) error {
	p, err := m.Provider(cl)
	if err != nil {
		return err
	}
	if cl.DoubleEncryption {
		err = m.opts.Store.SetWorkspaceEncryption(ctx, workspaceID, store.WorkspaceEncryption{Provider: p, DoubleEncryption: true})
	} else {
		err = m.opts.Store.SetWorkspaceKeyProvider(ctx, workspaceID, p)
	}
	if err != nil {
		return fmt.Errorf("link workspace %s to cluster %s: %w", workspaceID, cl.Name, err)
	}
	m.log.Info("workspace keyed with the cluster's customer-managed key", slog.String("workspace_id", workspaceID),
		slog.String("cluster", cl.ID()), slog.String("key_id", p.KeyID()), slog.Bool("double_encryption", cl.DoubleEncryption))
	return nil
}

// Unlink moves the workspace back to the platform key (its double
// encryption, if any, stays). The customer key must still be usable.
func (m *Manager) Unlink(ctx context.Context, workspaceID string) error {
	if err := m.opts.Store.SetWorkspaceKeyProvider(ctx, workspaceID, nil); err != nil {
		return fmt.Errorf("unlink workspace %s: %w", workspaceID, err)
	}
	m.log.Info("workspace back on the platform key", slog.String("workspace_id", workspaceID))
	return nil
}

// Attach gives the store the provider of every linked workspace after a
// start (the store does not persist provider credentials). A workspace
// whose key cannot be used stays locked (its requests answer
// CustomerManagedKeyUnavailable) and is unlocked by the store's retries
// once the key is back; that is logged, not returned. Errors building a
// provider are returned joined, after trying every workspace.
func (m *Manager) Attach(ctx context.Context, links []catalog.ClusterLink, clusters []catalog.Cluster) error {
	byID := map[string]*catalog.Cluster{}
	for i := range clusters {
		byID[strings.ToLower(clusters[i].ID())] = &clusters[i]
	}
	var errs []error
	for _, l := range links {
		cl := byID[strings.ToLower(l.ClusterID)]
		if cl == nil {
			errs = append(errs, fmt.Errorf("workspace %s: cluster %s not loaded", l.Workspace.CustomerID, l.ClusterID))
			continue
		}
		p, err := m.Provider(cl)
		if err != nil {
			errs = append(errs, fmt.Errorf("workspace %s: %w", l.Workspace.CustomerID, err))
			continue
		}
		err = m.opts.Store.SetWorkspaceKeyProvider(ctx, l.Workspace.CustomerID, p)
		if errors.Is(err, store.ErrKeyUnavailable) {
			m.log.Warn("customer-managed key unavailable at start: the workspace stays locked until the key is restored",
				slog.String("workspace_id", l.Workspace.CustomerID), slog.String("cluster", cl.ID()), slog.String("key_id", p.KeyID()))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("workspace %s: %w", l.Workspace.CustomerID, err))
			continue
		}
		m.log.Info("customer-managed key attached", slog.String("workspace_id", l.Workspace.CustomerID), slog.String("key_id", p.KeyID()))
	}
	return errors.Join(errs...)
}

// Status reports a workspace's key state.
func (m *Manager) Status(ctx context.Context, workspaceID string) (store.EncryptionStatus, error) {
	return m.opts.Store.EncryptionStatus(ctx, workspaceID)
}

// fileKey is a crypt.FileKey opened lazily: its ID is the one recorded when
// the cluster was written, so it can be handed to the store while the file
// is unreadable (revoked) and starts working when the file is back.
type fileKey struct {
	path, id string

	mu sync.Mutex // guards fk
	fk *crypt.FileKey
}

var _ crypt.KeyProvider = (*fileKey)(nil)

func (f *fileKey) load() (*crypt.FileKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fk != nil {
		return f.fk, nil
	}
	fk, err := crypt.OpenFileKey(f.path)
	if err != nil {
		return nil, err
	}
	if fk.KeyID() != f.id {
		return nil, fmt.Errorf("file key %s: %w: the file holds another key than the cluster was configured with", f.path, crypt.ErrKeyUnavailable)
	}
	f.fk = fk
	return fk, nil
}

func (f *fileKey) KeyID() string  { return f.id }
func (f *fileKey) String() string { return "cmk.fileKey(" + f.id + ")" }

func (f *fileKey) WrapKey(ctx context.Context, key, aad []byte) ([]byte, error) {
	fk, err := f.load()
	if err != nil {
		return nil, err
	}
	return fk.WrapKey(ctx, key, aad)
}

func (f *fileKey) UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	fk, err := f.load()
	if err != nil {
		return nil, err
	}
	return fk.UnwrapKey(ctx, wrapped, aad)
}
