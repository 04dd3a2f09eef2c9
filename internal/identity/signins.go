package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Persisted sign-ins. Authorization codes and device code grants live in
// memory while the token service runs; when the Store also implements
// SignInStore every change is written through, sealed with the platform key,
// so that a sign-in in progress (a code not yet redeemed, a device waiting
// for its user or already signed in but not yet polled) survives a restart.
// The records are short-lived (authCodeLifetime, deviceCodeLifetime) and
// single-use: redeeming or expiring one deletes it from the store before
// the token is issued. The sign-in pages themselves keep no server state
// (the request is in hidden form fields, CSRF is a double-submit cookie).

// Kinds of PendingSignIn.
const (
	SignInAuthCode   = "authorization_code"
	SignInDeviceCode = "device_code"
)

// PendingSignIn is one persisted sign-in in progress: an opaque, sealed
// record under the SHA-256 of its code. Alias is the device flow's user
// code ("" for authorization codes).
type PendingSignIn struct {
	Kind    string
	Key     string // hex SHA-256 of the authorization or device code
	Alias   string
	Sealed  []byte // Sealer.Seal of the record, AAD = Kind + "\x00" + Key
	Expires time.Time
}

// SignInStore persists pending sign-ins. The catalog implements it.
type SignInStore interface {
	// PutSignIn inserts or replaces the record (Kind, Key).
	PutSignIn(ctx context.Context, p PendingSignIn) error
	// DeleteSignIn removes the record (Kind, Key); a missing one is not an
	// error.
	DeleteSignIn(ctx context.Context, kind, key string) error
	// PendingSignIns deletes the records expired at now and returns the
	// others.
	PendingSignIns(ctx context.Context, now time.Time) ([]PendingSignIn, error)
}

// signInRecord is the sealed content of a PendingSignIn.
type signInRecord struct {
	Tenant      string   `json:"tenant"`
	ClientID    string   `json:"clientId"`
	RedirectURI string   `json:"redirectUri,omitempty"`
	Challenge   string   `json:"challenge,omitempty"`
	Scope       string   `json:"scope"`
	Nonce       string   `json:"nonce,omitempty"`
	UserCode    string   `json:"userCode,omitempty"`
	User        *User    `json:"user,omitempty"`
	AMR         []string `json:"amr,omitempty"`
	AuthTime    int64    `json:"authTime,omitempty"`
}

func signInAAD(kind, key string) []byte { return []byte(kind + "\x00" + key) }

// persistSignIn writes one pending sign-in through to the store, when there
// is one.
func (s *TokenService) persistSignIn(ctx context.Context, kind, key, alias string, rec signInRecord, expires time.Time) error {
	if s.users.signins == nil {
		return nil
	}
	plain, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode pending sign-in: %w", err)
	}
	sealed, err := s.keys.Seal(plain, signInAAD(kind, key))
	if err != nil {
		return fmt.Errorf("seal pending sign-in: %w", err)
	}
	if err := s.users.signins.PutSignIn(ctx, PendingSignIn{Kind: kind, Key: key, Alias: alias, Sealed: sealed, Expires: expires}); err != nil {
		return fmt.Errorf("store pending sign-in: %w", err)
	}
	return nil
}

// forgetSignIn deletes a pending sign-in from the store, when there is one.
func (s *TokenService) forgetSignIn(ctx context.Context, kind, key string) error {
	if s.users.signins == nil {
		return nil
	}
	if err := s.users.signins.DeleteSignIn(ctx, kind, key); err != nil {
		return fmt.Errorf("delete pending sign-in: %w", err)
	}
	return nil
}

// loadSignIns restores the pending sign-ins of the store into memory at
// start. A record that does not open (another platform key, tampering) is
// dropped and logged.
func (s *TokenService) loadSignIns(ctx context.Context) error {
	if s.users.signins == nil {
		return nil
	}
	now := s.now()
	recs, err := s.users.signins.PendingSignIns(ctx, now)
	if err != nil {
		return fmt.Errorf("load pending sign-ins: %w", err)
	}
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	for _, p := range recs {
		plain, err := s.keys.Open(p.Sealed, signInAAD(p.Kind, p.Key))
		var rec signInRecord
		if err == nil {
			err = json.Unmarshal(plain, &rec)
		}
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "pending sign-in does not open; dropped", slog.String("kind", p.Kind), slog.Any("error", err))
			_ = s.users.signins.DeleteSignIn(ctx, p.Kind, p.Key)
			continue
		}
		switch p.Kind {
		case SignInAuthCode:
			if rec.User == nil {
				continue
			}
			s.users.codes[p.Key] = &authCode{tenant: rec.Tenant, clientID: rec.ClientID, redirectURI: rec.RedirectURI,
				challenge: rec.Challenge, scope: rec.Scope, nonce: rec.Nonce, user: *rec.User, amr: rec.AMR,
				authTime: time.Unix(rec.AuthTime, 0), expires: p.Expires}
		case SignInDeviceCode:
			d := &deviceGrant{tenant: rec.Tenant, clientID: rec.ClientID, scope: rec.Scope, userCode: rec.UserCode,
				expires: p.Expires, user: rec.User, amr: rec.AMR, authTime: time.Unix(rec.AuthTime, 0)}
			s.users.devices[p.Key] = d
			s.users.byUser[rec.UserCode] = p.Key
		}
	}
	return nil
}

// authCodeRecord is the sealed form of an authorization code.
func authCodeRecord(ac *authCode) signInRecord {
	u := ac.user
	return signInRecord{Tenant: ac.tenant, ClientID: ac.clientID, RedirectURI: ac.redirectURI, Challenge: ac.challenge,
		Scope: ac.scope, Nonce: ac.nonce, User: &u, AMR: ac.amr, AuthTime: ac.authTime.Unix()}
}

// deviceRecord is the sealed form of a device code grant.
func deviceRecord(d *deviceGrant) signInRecord {
	rec := signInRecord{Tenant: d.tenant, ClientID: d.clientID, Scope: d.scope, UserCode: d.userCode, AMR: d.amr}
	if d.user != nil {
		u := *d.user
		rec.User, rec.AuthTime = &u, d.authTime.Unix()
	}
	return rec
}
