package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"custos/internal/crypt"
)

// sessionCookie is the browser's only credential: an opaque random ID. The
// __Host- prefix makes the browser refuse it unless Secure, Path=/ and
// without Domain, so no sibling host can set or read it.
const sessionCookie = "__Host-custos-session"

// session is one signed-in browser. Tokens never leave the server.
type session struct {
	// refreshMu serializes refresh-token redemptions: the token service
	// rotates refresh tokens and treats a second use of one as theft
	// (revoking the whole family), so two API calls that both need a new
	// access token must not redeem the same refresh token.
	refreshMu sync.Mutex
	user      user
	provider  int          // 1 + index of the external provider signed in with; 0: the token service
	refresh   crypt.Secret // rotating refresh token from the token service
	tokens    map[string]accessToken
	csrf      string
	created   time.Time
	lastUsed  time.Time
}

type user struct {
	Name     string `json:"name"`
	ObjectID string `json:"objectId"`
	TenantID string `json:"tenantId"`
}

type accessToken struct {
	token   crypt.Secret
	expires time.Time
}

// sessionStore holds sessions keyed by the SHA-256 of their cookie value, so
// the store itself holds nothing a browser could present. It is bounded:
// beyond max sessions the one used longest ago is dropped.
type sessionStore struct {
	mu       sync.Mutex
	byHash   map[[32]byte]*session
	max      int
	ttl, idl time.Duration
	now      func() time.Time
}

func newSessionStore(max int, ttl, idle time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{byHash: map[[32]byte]*session{}, max: max, ttl: ttl, idl: idle, now: now}
}

// randomToken returns n random bytes, URL-safe base64 encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("portal: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// create stores s and returns the cookie value that names it.
func (st *sessionStore) create(s *session) string {
	id := randomToken(32)
	now := st.now()
	s.created, s.lastUsed = now, now
	s.csrf = randomToken(32)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked(now)
	for len(st.byHash) >= st.max {
		var oldest [32]byte
		var when time.Time
		first := true
		for h, x := range st.byHash {
			if first || x.lastUsed.Before(when) {
				oldest, when, first = h, x.lastUsed, false
			}
		}
		delete(st.byHash, oldest)
	}
	st.byHash[sha256.Sum256([]byte(id))] = s
	return id
}

// get returns the live session named by cookie value id and marks it used.
func (st *sessionStore) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	h := sha256.Sum256([]byte(id))
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byHash[h]
	if !ok {
		return nil, false
	}
	if now.Sub(s.created) > st.ttl || now.Sub(s.lastUsed) > st.idl {
		delete(st.byHash, h)
		return nil, false
	}
	s.lastUsed = now
	return s, true
}

// remove ends the session named by id.
func (st *sessionStore) remove(id string) {
	h := sha256.Sum256([]byte(id))
	st.mu.Lock()
	delete(st.byHash, h)
	st.mu.Unlock()
}

func (st *sessionStore) expireLocked(now time.Time) {
	for h, s := range st.byHash {
		if now.Sub(s.created) > st.ttl || now.Sub(s.lastUsed) > st.idl {
			delete(st.byHash, h)
		}
	}
}

// token returns the session's cached access token for audience, if it is
// valid for at least another minute. Callers hold no lock; the store's
// mutex guards the maps.
func (st *sessionStore) token(s *session, audience string) (crypt.Secret, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := s.tokens[audience]
	if !ok || st.now().Add(time.Minute).After(t.expires) {
		return nil, false
	}
	return t.token, true
}

// update records a token response: the access token for audience and the
// rotated refresh token.
func (st *sessionStore) update(s *session, audience string, tr tokenResult) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.tokens == nil {
		s.tokens = map[string]accessToken{}
	}
	s.tokens[audience] = accessToken{token: tr.access, expires: tr.expires}
	if len(tr.refresh) > 0 {
		s.refresh = tr.refresh
	}
}

// refreshToken returns the session's current refresh token.
func (st *sessionStore) refreshToken(s *session) crypt.Secret {
	st.mu.Lock()
	defer st.mu.Unlock()
	return s.refresh
}

// checkCSRF compares the request's token with the session's in constant time.
func checkCSRF(s *session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
