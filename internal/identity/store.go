package identity

import (
	"context"
	"errors"
	"time"
)

// Store sentinels. Implementations wrap them so that the token service
// classifies failures with errors.Is.
var (
	// ErrNotFound is returned by a Store when the requested record does not exist.
	ErrNotFound = errors.New("identity: not found")
	// ErrConflict is returned by a Store when a record to create already
	// exists (for example a machine of the same name in the resource group).
	ErrConflict = errors.New("identity: conflict")
	// ErrEnrollmentTokenInvalid is returned by EnrollMachine when the
	// enrollment token is unknown, expired or already used.
	ErrEnrollmentTokenInvalid = errors.New("identity: enrollment token invalid, expired or already used")
)

// ServicePrincipal is an application identity that authenticates with the
// client credentials flow.
type ServicePrincipal struct {
	TenantID    string
	ObjectID    string // GUID; role assignments name it as principalId
	AppID       string // GUID; the client_id
	DisplayName string
	Secrets     []ClientSecret
	// Kind is KindServicePrincipal (also when empty) or KindManagedIdentity;
	// ResourceID is a managed identity's resource (the machine of a
	// system-assigned identity, or the userAssignedIdentities resource).
	// Tokens of managed identities carry it as xms_mirid.
	Kind       PrincipalKind
	ResourceID string
}

// ClientSecret is one credential of a service principal. Only a hash of the
// secret is stored; the secret itself is shown once, when it is created.
type ClientSecret struct {
	KeyID   string // GUID
	Hint    string // first three characters, as Azure shows them
	Hash    []byte // see the token service for the hash construction
	Expires time.Time
}

// SigningKey is one token-signing key. The private key is stored sealed by the
// platform key hierarchy (internal/crypt); PublicJWK is the JSON Web Key
// served in JWKS.
type SigningKey struct {
	KID           string
	Algorithm     string // "ES256" or "RS256"
	PrivateSealed []byte
	PublicJWK     []byte
	Created       time.Time
	SignUntil     time.Time // no new tokens after this
	PublishUntil  time.Time // removed from JWKS after this (SignUntil + token lifetime)
}

// Store persists what the token service needs. The catalog implements it.
// Implementations are safe for concurrent use.
type Store interface {
	ServicePrincipalByAppID(ctx context.Context, tenantID, appID string) (ServicePrincipal, error)
	CreateServicePrincipal(ctx context.Context, sp ServicePrincipal) error
	AddClientSecret(ctx context.Context, tenantID, appID string, s ClientSecret) error
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	PutSigningKey(ctx context.Context, k SigningKey) error
	DeleteSigningKey(ctx context.Context, kid string) error

	// PrincipalState returns the kind and state of the principal with
	// objectID in tenantID, or an error matching ErrNotFound when it no
	// longer exists. Authenticate consults it (through a short-lived cache)
	// so that disabling or deleting a principal ends its tokens.
	PrincipalState(ctx context.Context, tenantID, objectID string) (PrincipalState, error)
	// KeyCredentials returns the public keys and certificates the
	// application may sign client assertions with.
	KeyCredentials(ctx context.Context, tenantID, appID string) ([]KeyCredential, error)
	// AddKeyCredential adds a key credential to an application (ErrNotFound
	// when it does not exist).
	AddKeyCredential(ctx context.Context, tenantID, appID string, k KeyCredential) error
	// EnrollMachine atomically consumes the enrollment token whose hash is
	// e.TokenHash and creates the machine resource in the token's resource
	// group with a system-assigned managed identity (e.ObjectID, e.AppID)
	// bound to e.Key. It fails with ErrEnrollmentTokenInvalid for an
	// unknown, expired or used token and with ErrConflict when the machine
	// exists; then nothing changes and the token stays usable.
	EnrollMachine(ctx context.Context, e MachineEnrollment) (EnrolledMachine, error)
}

// PrincipalState is what Authenticate needs to know about a principal
// beyond its token.
type PrincipalState struct {
	Kind       PrincipalKind
	ResourceID string // managed identities: the resource the identity belongs to
	Enabled    bool
}

// KeyCredential is a public key a principal proves possession of by signing
// client assertions: an X.509 certificate's key (service principals, as
// Entra's certificate credentials) or a bare key generated on an enrolled
// machine.
type KeyCredential struct {
	KeyID       string // GUID
	DisplayName string
	PublicKey   []byte // PKIX DER: RSA 2048–4096 bits or ECDSA P-256
	Certificate []byte // DER of the certificate; nil for a bare key
	NotBefore   time.Time
	Expires     time.Time // zero: no expiry (bare machine keys)
}

// MachineEnrollment is one enrollment request, checked and ready to store.
type MachineEnrollment struct {
	TokenHash    []byte // HashEnrollmentToken of the presented token
	Name         string // machine resource name
	Hostname     string
	OSType       string
	OSName       string
	OSVersion    string
	AgentVersion string
	ObjectID     string // new GUIDs for the system-assigned identity
	AppID        string
	Key          KeyCredential
}

// EnrolledMachine is the result of a successful enrollment.
type EnrolledMachine struct {
	ResourceID string
	Name       string
	Location   string
	TenantID   string
	ObjectID   string
	AppID      string
}
