package portal

import (
	"embed"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed web
var webFS embed.FS

// ClientID is the public client the portal signs in as. The token service
// registers it with the redirect URI https://<host>/portal/callback.
const ClientID = "custos-portal"

// Paths the portal serves; Patterns lists them for the server's router.
const (
	pathRoot     = "/"
	pathIndex    = "/portal/"
	pathAssets   = "/portal/assets/"
	pathLogin    = "/portal/login"
	pathCallback = "/portal/callback"
	pathLogout   = "/portal/logout"
	pathSession  = "/portal/session"
	pathAPI      = "/portal/api/"
)

// contentSecurityPolicy allows only the portal's own scripts, styles and
// API calls: no inline script or style, no eval, no framing, no plug-ins.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configure a Portal.
type Options struct {
	// Tenant is the directory tenant users sign in to.
	Tenant string
	// Backend is the server's complete handler chain. Token requests and
	// proxied API calls go through it in-process, exactly as a client's
	// request would; it is a function because the server builds its chain
	// after the portal.
	Backend func() http.Handler
	// SessionTTL bounds a session's life (default 8 h); IdleTTL ends a
	// session unused for that long (default 1 h).
	SessionTTL time.Duration
	IdleTTL    time.Duration
	// MaxSessions bounds the session store (default 10,000); the session
	// used longest ago is dropped first.
	MaxSessions int
	// External are OpenID Connect providers offered on the sign-in page
	// besides the Custos token service.
	External []ExternalProvider
	Logger   *slog.Logger
	Now      func() time.Time
}

// Portal serves the web portal.
type Portal struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	assets   fs.FS
	sessions *sessionStore
	external []*provider
	gzipped  sync.Map // asset name → gzip-compressed content
}

// New returns a Portal.
func New(opts Options) *Portal {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.IdleTTL <= 0 {
		opts.IdleTTL = time.Hour
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic("portal: embedded assets missing: " + err.Error())
	}
	var ext []*provider
	for _, e := range opts.External {
		ext = append(ext, newProvider(e))
	}
	return &Portal{
		external: ext,
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		assets:   sub,
		sessions: newSessionStore(opts.MaxSessions, opts.SessionTTL, opts.IdleTTL, opts.Now),
	}
}

// Patterns returns the router patterns Handler serves.
func Patterns() []string {
	return []string{
		"GET " + pathRoot + "{$}",
		"GET " + pathIndex + "{$}",
		"GET " + pathAssets + "{file...}",
		"GET " + pathLogin,
		"GET " + pathCallback,
		"POST " + pathLogout,
		"GET " + pathSession,
		"GET " + pathLanguage,
		pathAPI + "{rest...}",
	}
}

// Handler serves the portal's paths (see Patterns).
func (p *Portal) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathRoot+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, pathIndex, http.StatusFound)
	})
	mux.HandleFunc("GET "+pathIndex+"{$}", p.serveIndex)
	mux.HandleFunc("GET "+pathAssets+"{file...}", p.serveAsset)
	mux.HandleFunc("GET "+pathLogin, p.serveLogin)
	mux.HandleFunc("GET "+pathCallback, p.serveCallback)
	mux.HandleFunc("POST "+pathLogout, p.serveLogout)
	mux.HandleFunc("GET "+pathSession, p.serveSession)
	mux.HandleFunc("GET "+pathLanguage, p.serveLanguage)
	mux.HandleFunc(pathAPI+"{rest...}", p.serveAPI)
	return mux
}

// pageHeaders sets the headers of every portal response: the strict CSP
// replaces the API's "default-src 'none'".
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

func (p *Portal) serveIndex(w http.ResponseWriter, r *http.Request) {
	p.serveFile(w, r, "index.html")
}

func (p *Portal) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	clean := path.Clean("/" + name)[1:]
	if clean != name || strings.HasPrefix(name, ".") || strings.Contains(name, "/.") {
		http.NotFound(w, r)
		return
	}
	p.serveFile(w, r, "assets/"+name)
}

func (p *Portal) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	b, err := fs.ReadFile(p.assets, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	pageHeaders(h)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	// Assets are embedded in the binary: they change only with it.
	if name != "index.html" {
		h.Set("Cache-Control", "private, max-age=300")
	}
	p.writeMaybeGzip(w, r, name, b)
}
