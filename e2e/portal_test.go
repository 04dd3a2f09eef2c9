package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// artifactDir is where the browser tests leave their screenshots:
// $CUSTOS_ARTIFACTS/portal, or test-artifacts/portal at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CUSTOS_ARTIFACTS"); d != "" {
		return filepath.Join(d, "portal")
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "test-artifacts", "portal")
}

// newBrowser starts Chromium for s, closed at cleanup; a page error or CSP
// violation at any point fails the test.
func newBrowser(t *testing.T, s *Server) *Browser {
	t.Helper()
	b, err := NewBrowser(testCtx(t, 5*time.Minute), s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range b.Problems() {
			t.Errorf("browser: %s", p)
		}
		b.Close()
	})
	return b
}

func shot(t *testing.T, b *Browser, name string) {
	t.Helper()
	p, err := b.Screenshot(artifactDir(t), name)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", p)
}

// The portal's front door: / leads to the sign-in page, served under the
// strict CSP with no console error, and "Sign in" starts the authorization
// code flow at the token service.
func TestPortalSignInPage(t *testing.T) {
	s, _ := newServerNoRoles(t)
	b := newBrowser(t, s)
	base := "https://" + s.Addr()
	if err := chromedp.Do(b.Ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#signin"),
	); err != nil {
		t.Fatal(err)
	}
	shot(t, b, "00-signin")
	href, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.getElementById("signin").getAttribute("href")`))
	if err != nil || href != "/portal/login" {
		t.Fatalf("sign-in link = %q, %v", href, err)
	}
	loc, err := chromedp.Run(b.Ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/portal/") {
		t.Fatalf("location = %q, %v", loc, err)
	}
}
