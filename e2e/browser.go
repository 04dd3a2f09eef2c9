package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium driven over the DevTools protocol, trusting
// exactly one server certificate (by its public key), and recording every
// console error and Content Security Policy report the pages produce.
type Browser struct {
	Ctx    context.Context
	cancel func()

	mu       sync.Mutex
	problems []string // console errors and CSP violations, in order
}

// ChromiumPath finds the system Chromium, or says how to install it.
func ChromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found: install Debian's chromium (apt-get install -y chromium); ./test.sh does this")
}

// spkiHash is the base64 SHA-256 of the certificate key the server at addr
// presents, for Chromium's --ignore-certificate-errors-spki-list: the
// browser then trusts that key and no other invalid certificate.
func spkiHash(addr string) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // #nosec G402 -- only reads the key to pin it
	if err != nil {
		return "", fmt.Errorf("read the server certificate: %w", err)
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", fmt.Errorf("the server presented no certificate")
	}
	sum := sha256.Sum256(certs[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// NewBrowser starts headless Chromium for the server at addr; it also
// trusts the certificates of the servers at also (an external identity
// provider, for example), and no other invalid certificate.
func NewBrowser(parent context.Context, addr string, also ...string) (*Browser, error) {
	exe, err := ChromiumPath()
	if err != nil {
		return nil, err
	}
	pin, err := spkiHash(addr)
	if err != nil {
		return nil, err
	}
	for _, a := range also {
		h, err := spkiHash(a)
		if err != nil {
			return nil, err
		}
		pin += "," + h
	}
	profile, err := os.MkdirTemp("", "custos-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Flag("ignore-certificate-errors-spki-list", pin),
		chromedp.Flag("no-sandbox", os.Geteuid() == 0), // Chromium refuses its sandbox as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(parent, opts...)
	ctx, ccancel := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx, cancel: func() { ccancel(); acancel(); _ = os.RemoveAll(profile) }}
	listen := func(ev any) {
		switch e := ev.(type) {
		case *log.EventEntryAdded:
			// A failed HTTP status (a 403 for a resource the user may not
			// read) is the page working as designed; it shows as a
			// "network" entry, which is not a page error.
			csp := strings.Contains(e.Entry.Text, "Content Security Policy")
			if csp || e.Entry.Level == log.EntryLevelError && e.Entry.Source != log.EntrySourceNetwork {
				b.note(fmt.Sprintf("log %s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				b.note("console.error: " + strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			b.note("exception: " + e.ExceptionDetails.Text + " " + exceptionText(e.ExceptionDetails))
		}
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		b.Close()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	// chromedp enables the Runtime and Log domains on every target.
	if err := chromedp.Do(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	return b, nil
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

func (b *Browser) note(s string) {
	b.mu.Lock()
	b.problems = append(b.problems, s)
	b.mu.Unlock()
}

// Problems returns the console errors, exceptions and CSP reports so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Screenshot saves a full-page PNG of the current page as dir/name.png.
func (b *Browser) Screenshot(dir, name string) (string, error) {
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+".png")
	return p, os.WriteFile(p, png, 0o644)
}

// JS evaluates a JavaScript expression as a step. DevTools evaluation is not
// subject to the page's CSP; the page itself runs no inline script.
func JS(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](expr)(ctx, t)
		return chromedp.Void{}, err
	}
}

// Close stops Chromium and removes its profile.
func (b *Browser) Close() { b.cancel() }
