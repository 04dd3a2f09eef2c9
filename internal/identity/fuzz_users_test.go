package identity

import (
	"strings"
	"testing"
)

// FuzzParseUserScope: scopes of the user flows come from clients.
func FuzzParseUserScope(f *testing.F) {
	for _, s := range []string{"", "https://api.loganalytics.io/.default offline_access", "openid profile https://management.azure.com/user_impersonation",
		"a b", "https://monitor.azure.com//.default", "/.default", "offline_access OFFLINE_ACCESS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, scope string) {
		us, oerr := parseUserScope(scope)
		if oerr != nil {
			if oerr.status != 400 || oerr.code == "" {
				t.Fatalf("bad error %+v", oerr)
			}
			return
		}
		if _, ok := canonicalAudience(us.aud); !ok || !strings.HasPrefix(us.text, us.aud+"/.default") {
			t.Fatalf("scope %q gave %+v", scope, us)
		}
	})
}

// FuzzPeekIssuer and FuzzPHC: an external token's unverified payload, and
// stored password hashes (which a tampered catalog controls), must never
// panic nor make verification unbounded.
func FuzzPeekIssuer(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLyJ9.c2ln")
	f.Add("..")
	f.Add("a.%%%.b")
	f.Add("x.eyJpc3MiOjF9.y")
	f.Fuzz(func(t *testing.T, tok string) {
		_ = peekIssuer(tok)
	})
}

func FuzzPHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "password")
	f.Add("$argon2id$v=19$m=1048577,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x")
	f.Add("$argon2id$v=19$m=8,t=99,p=255$$", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, phc, pw string) {
		p, salt, hash, err := parsePHC(phc)
		if err != nil {
			if VerifyPassword(phc, pw) {
				t.Fatal("malformed hash verified")
			}
			return
		}
		if p.MemoryKiB > maxArgonMemoryKiB || p.Time > maxArgonTime || p.Threads > maxArgonThreads || len(salt) > 64 || len(hash) > 64 {
			t.Fatalf("unbounded parameters accepted: %+v", p)
		}
		if p.MemoryKiB <= 64*1024 && p.Time <= 3 {
			_ = VerifyPassword(phc, pw)
		}
	})
}
