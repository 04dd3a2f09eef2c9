package identity

import (
	"context"
	"errors"
	"time"
)

// Directory sentinels.
var (
	// ErrRefreshTokenInvalid is returned by Directory.UseRefreshToken for an
	// unknown, expired or revoked refresh token.
	ErrRefreshTokenInvalid = errors.New("identity: refresh token invalid, expired or revoked")
	// ErrRefreshTokenReused is returned by Directory.UseRefreshToken when a
	// refresh token is presented a second time; the store has then revoked
	// every token of its family (rotation with reuse detection).
	ErrRefreshTokenReused = errors.New("identity: refresh token reused; its family is revoked")
)

// User is a human user of the Custos directory: a local user (password and
// TOTP) or a user that signs in through a trusted external OIDC issuer
// (ExternalIssuer and ExternalSubject set).
type User struct {
	TenantID          string
	ObjectID          string // GUID; role assignments name it as principalId
	UserPrincipalName string // sign-in name, e.g. alice@example.test; unique per tenant
	DisplayName       string
	Mail              string
	Enabled           bool
	HasPassword       bool
	TOTPEnabled       bool
	ExternalIssuer    string
	ExternalSubject   string
	Created           time.Time
	Modified          time.Time
}

// SignInState is what the token service needs to check a local sign-in. It
// never leaves the token service.
type SignInState struct {
	PasswordHash  string // argon2id PHC string; "" when the user has no password
	TOTPSealed    []byte // sealed TOTP secret; nil when none
	TOTPEnabled   bool
	TOTPLastStep  int64 // last accepted RFC 6238 time step
	FailedSignIns int
	LockedUntil   time.Time
}

// Group is a directory group. Members may be users, service principals,
// managed identities and other groups (nested membership).
type Group struct {
	TenantID    string
	ObjectID    string
	DisplayName string // unique per tenant (case-insensitively)
	Description string
	Created     time.Time
}

// RefreshToken is a stored refresh token (only the SHA-256 of the token).
type RefreshToken struct {
	Hash     []byte
	FamilyID string
	TenantID string
	ObjectID string
	ClientID string
	Scope    string
	Created  time.Time
	Expires  time.Time
}

// Directory is implemented by stores that hold users, groups and refresh
// tokens (the catalog does). The token service uses it, when its Store
// implements it, for local sign-in, refresh tokens and the state of user
// principals. Implementations are safe for concurrent use.
type Directory interface {
	// UserByUPN returns the user with the sign-in name upn
	// (case-insensitive) with its sign-in state, or ErrNotFound.
	UserByUPN(ctx context.Context, tenantID, upn string) (User, SignInState, error)
	// DirectoryUser returns a user by object ID, or ErrNotFound.
	DirectoryUser(ctx context.Context, tenantID, objectID string) (User, SignInState, error)
	// RecordSignInFailure counts a failed sign-in and, when lockUntil is
	// not zero, locks the user until then. It returns the failure count.
	RecordSignInFailure(ctx context.Context, tenantID, objectID string, lockUntil time.Time) (int, error)
	// ResetSignInFailures clears the failure count and lock after a
	// successful sign-in.
	ResetSignInFailures(ctx context.Context, tenantID, objectID string) error
	// AcceptTOTPStep records step as the last accepted TOTP time step if it
	// is greater than the stored one, atomically; ok is false otherwise (a
	// replayed or older code).
	AcceptTOTPStep(ctx context.Context, tenantID, objectID string, step int64) (ok bool, err error)
	// SetUserPassword stores a new password hash (PHC string).
	SetUserPassword(ctx context.Context, tenantID, objectID, hash string) error
	// SetUserTOTP stores a sealed TOTP secret (nil removes it) and whether
	// it is enabled (required at sign-in).
	SetUserTOTP(ctx context.Context, tenantID, objectID string, sealed []byte, enabled bool) error
	// ExternalUser returns the user bound to an external issuer's subject,
	// or ErrNotFound.
	ExternalUser(ctx context.Context, tenantID, issuer, subject string) (User, error)
	// GroupIDsByNameOrID maps group display names or object IDs (as an
	// external issuer's groups claim carries them) to the object IDs of the
	// groups that exist in tenantID; unknown entries are dropped.
	GroupIDsByNameOrID(ctx context.Context, tenantID string, refs []string) ([]string, error)
	// PutRefreshToken stores a new refresh token.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// UseRefreshToken atomically marks the token with hash as used and
	// returns it. An unknown, expired or revoked token is
	// ErrRefreshTokenInvalid; a token used before is ErrRefreshTokenReused
	// (and its whole family is revoked).
	UseRefreshToken(ctx context.Context, hash []byte, now time.Time) (RefreshToken, error)
	// RevokeRefreshTokens revokes every refresh token of a principal (all
	// families); it returns how many were live.
	RevokeRefreshTokens(ctx context.Context, tenantID, objectID string) (int, error)
}
