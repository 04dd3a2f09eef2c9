package identity

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"custos/internal/logtest"
)

func TestNeverLogsSecretsOrTokens(t *testing.T) {
	var logs logtest.Buffer
	e := newTestEnv(t, func(o *TokenServiceOptions) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	scope := "https://management.azure.com/.default"
	resp, body := e.postToken(tenantA, e.form(e.secret, scope), "")
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d", resp.StatusCode)
	}
	tok := body["access_token"].(string)
	wrong := "zzz8Q~thisIsAWrongSecretThatMustNotBeLogged000000"
	if resp, _ := e.postToken(tenantA, e.form(wrong, scope), ""); resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	cred := e.credential(tenantA, e.sp.AppID, e.secret, e.srv.URL)
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
		t.Fatal(err)
	}
	e.whoami("Bearer "+tok, AudienceManagement)
	out := logs.String()
	if !strings.Contains(out, "token issued") || !strings.Contains(out, "token request rejected") {
		t.Fatalf("expected security events in logs:\n%s", out)
	}
	parts := strings.Split(tok, ".")
	for name, s := range map[string]string{"secret": e.secret, "wrong secret": wrong, "token signature": parts[2], "token payload": parts[1]} {
		if strings.Contains(out, s) {
			t.Fatalf("logs contain the %s", name)
		}
	}
}

func TestConcurrentIssueAndValidate(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if g == 0 && i%5 == 0 {
					if err := e.ts.Rotate(ctx); err != nil {
						errs <- err
						return
					}
				}
				tok, _, err := e.ts.IssueToken(ctx, e.sp, AudienceIngestion)
				if err != nil {
					errs <- err
					return
				}
				for j := 0; j < 3; j++ {
					if _, err := e.ts.ValidateToken(ctx, tok, AudienceIngestion); err != nil {
						errs <- err
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
