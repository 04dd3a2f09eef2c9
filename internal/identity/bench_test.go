package identity

import (
	"context"
	"testing"
)

func benchService(b *testing.B) (*TokenService, ServicePrincipal) {
	b.Helper()
	ts, err := NewTokenService(TokenServiceOptions{Store: newMemStore(tenantA), Keys: newTestSealer(b), Issuer: "https://localhost:8443"})
	if err != nil {
		b.Fatal(err)
	}
	return ts, ServicePrincipal{TenantID: tenantA, ObjectID: "11111111-1111-4111-8111-111111111111",
		AppID: "22222222-2222-4222-8222-222222222222", DisplayName: "bench"}
}

// BenchmarkValidateWarm is the steady state: a client reusing its token.
func BenchmarkValidateWarm(b *testing.B) {
	ts, sp := benchService(b)
	ctx := context.Background()
	tok, _, err := ts.IssueToken(ctx, sp, AudienceQuery)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ts.ValidateToken(ctx, tok, AudienceQuery); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateCold verifies a token not seen before (signature + claims).
func BenchmarkValidateCold(b *testing.B) {
	ts, sp := benchService(b)
	ctx := context.Background()
	tok, _, err := ts.IssueToken(ctx, sp, AudienceQuery)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ts.tokens.init() // forget validated tokens
		if _, err := ts.ValidateToken(ctx, tok, AudienceQuery); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueToken(b *testing.B) {
	ts, sp := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ts.IssueToken(ctx, sp, AudienceIngestion); err != nil {
			b.Fatal(err)
		}
	}
}
