package identity

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store when the requested record does not exist.
var ErrNotFound = errors.New("identity: not found")

// ServicePrincipal is an application identity that authenticates with the
// client credentials flow.
type ServicePrincipal struct {
	TenantID    string
	ObjectID    string // GUID; role assignments name it as principalId
	AppID       string // GUID; the client_id
	DisplayName string
	Secrets     []ClientSecret
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
}
