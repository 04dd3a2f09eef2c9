package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/query"
)

// ListenerConfig is one extra HTTPS listener.
type ListenerConfig struct {
	// Address is host:port to bind.
	Address string `yaml:"address"`
	// Private marks every request arriving on this listener as private:
	// it may reach workspaces whose public network access is Disabled.
	Private bool `yaml:"private"`
	// ClientCAFile, when set, requires every client of this listener to
	// present a certificate issued by one of the PEM CAs in this file
	// (mutual TLS), in addition to the bearer token of each request.
	ClientCAFile string `yaml:"clientCAFile"`
}

// maxListeners bounds the extra listeners.
const maxListeners = 32

// validateNetwork checks listeners and privateNetworks.
func (c Config) validateNetwork() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
	}
	if len(c.Listeners) > maxListeners {
		return bad("listeners", "%d listeners; at most %d", len(c.Listeners), maxListeners)
	}
	seen := map[string]bool{c.Listen: true}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d].address", i)
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			return bad(key, "%q is not host:port: %v", l.Address, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return bad(key, "port %q is not a number from 0 to 65535", port)
		}
		if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			return bad(key, "host %q is neither an IP address nor a host name", host)
		}
		if port != "0" && seen[l.Address] {
			return bad(key, "%q is already used by another listener", l.Address)
		}
		seen[l.Address] = true
		if l.ClientCAFile != "" && strings.TrimSpace(l.ClientCAFile) == "" {
			return bad(fmt.Sprintf("listeners[%d].clientCAFile", i), "must not be blank")
		}
	}
	if _, err := parsePrivateNetworks(c.PrivateNetworks); err != nil {
		return bad("privateNetworks", "%v", err)
	}
	return nil
}

// parsePrivateNetworks parses CIDRs (a bare IP address is a single host).
func parsePrivateNetworks(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			if p.Bits() < 0 {
				return nil, fmt.Errorf("%q is not a valid IPv4-mapped prefix", s)
			}
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// setListeners parses the flag/env form of listeners:
// host:port[;private][;clientCAFile=path], comma-separated.
func setListeners(c *Config, v string) error {
	c.Listeners = nil
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ";")
		l := ListenerConfig{Address: strings.TrimSpace(parts[0])}
		for _, opt := range parts[1:] {
			opt = strings.TrimSpace(opt)
			name, val, hasVal := strings.Cut(opt, "=")
			switch {
			case strings.EqualFold(name, "private") && !hasVal:
				l.Private = true
			case strings.EqualFold(name, "private") && hasVal:
				b, err := strconv.ParseBool(val)
				if err != nil {
					return fmt.Errorf("listener %q: private=%q is not true or false", l.Address, val)
				}
				l.Private = b
			case strings.EqualFold(name, "clientCAFile") && hasVal && val != "":
				l.ClientCAFile = val
			default:
				return fmt.Errorf("listener %q: unknown option %q (want private or clientCAFile=path)", l.Address, opt)
			}
		}
		c.Listeners = append(c.Listeners, l)
	}
	return nil
}

// setPrivateNetworks parses the flag/env form of privateNetworks.
func setPrivateNetworks(c *Config, v string) error {
	c.PrivateNetworks = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.PrivateNetworks = append(c.PrivateNetworks, s)
		}
	}
	_, err := parsePrivateNetworks(c.PrivateNetworks)
	return err
}

// network holds the extra listeners and decides whether a connection is
// private. Immutable after newNetwork, except for the listeners' lifecycle.
type network struct {
	privateNets []netip.Prefix
	listeners   []*extraListener
	scopes      privateLinkModes // nil: no private link scopes

	// openRules caches admitNetwork's "open to public ingestion" answers:
	// immutable ID → the catalog generation it was computed under. The
	// answer depends on catalog rows only (rule destinations, workspace
	// settings, private link scopes), so it holds until the next catalog
	// write; refusals and errors are not cached.
	openRules sync.Map
	// openQueries does the same for queryNetworkGate: workspace customer ID
	// → the catalog generation under which it was open to public queries.
	// Without it every public query read the workspace and its private link
	// scopes from SQLite (about 15 % of a small query's CPU).
	openQueries sync.Map
}

// extraListener is one bound extra listener with its TLS configuration.
type extraListener struct {
	cfg ListenerConfig
	raw net.Listener // the TCP listener
	tls net.Listener // raw wrapped in TLS, with the marking of its conns
}

// privateLinkModes reports whether a private link scope holding the
// workspace (by ARM resource ID) sets the ingestion or query access mode to
// PrivateOnly. *catalog.DB implements it.
type privateLinkModes interface {
	PrivateOnlyModes(ctx context.Context, workspaceResourceID string) (ingestion, query bool, err error)
}

// markedListener tags each accepted connection with its listener's privacy.
type markedListener struct {
	net.Listener
	private bool
}

func (l markedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &markedConn{Conn: c, private: l.private}, nil
}

// markedConn is a connection accepted on an extra listener.
type markedConn struct {
	net.Conn
	private bool
}

// origin is where a connection came from, as the network rules see it.
type origin struct {
	private bool
	// reason says why it is private: "listener", "network" or "" (public).
	reason string
}

type originKey struct{}

// originFrom returns the origin of the request's connection. A request
// without one (served in-process, not over a listener) is public.
func originFrom(ctx context.Context) origin {
	o, _ := ctx.Value(originKey{}).(origin)
	return o
}

// newNetwork parses the private networks and binds the extra listeners.
// Each extra listener serves TLS with base, plus client certificate
// verification when it has a client CA file.
func newNetwork(cfg Config, base *tls.Config) (*network, error) {
	nets, err := parsePrivateNetworks(cfg.PrivateNetworks)
	if err != nil {
		return nil, fmt.Errorf("%w: privateNetworks: %v", ErrInvalidConfig, err)
	}
	n := &network{privateNets: nets}
	for _, lc := range cfg.Listeners {
		tc := base.Clone()
		if lc.ClientCAFile != "" {
			pool, err := loadClientCAs(lc.ClientCAFile)
			if err != nil {
				n.close()
				return nil, fmt.Errorf("listener %s: %w", lc.Address, err)
			}
			tc.ClientCAs = pool
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
		raw, err := net.Listen("tcp", lc.Address)
		if err != nil {
			n.close()
			return nil, fmt.Errorf("listen on %s: %w", lc.Address, err)
		}
		n.listeners = append(n.listeners, &extraListener{
			cfg: lc, raw: raw,
			tls: tls.NewListener(markedListener{Listener: raw, private: lc.Private}, tc),
		})
	}
	return n, nil
}

// loadClientCAs reads a PEM bundle of CA certificates.
func loadClientCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("client CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// close closes every extra listener.
func (n *network) close() error {
	if n == nil {
		return nil
	}
	var errs []error
	for _, l := range n.listeners {
		if err := l.raw.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// connContext records the connection's origin in the context of every
// request on it: private if accepted on a private listener or if its
// source address (the TCP peer, never a header) lies in a private network.
func (n *network) connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	o := origin{}
	if mc, ok := c.(*markedConn); ok && mc.private {
		o = origin{private: true, reason: "listener"}
	} else if n.inPrivateNetwork(c.RemoteAddr()) {
		o = origin{private: true, reason: "network"}
	}
	return context.WithValue(ctx, originKey{}, o)
}

// inPrivateNetwork reports whether addr's IP lies in a private network.
func (n *network) inPrivateNetwork(addr net.Addr) bool {
	if len(n.privateNets) == 0 || addr == nil {
		return false
	}
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		x, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return false
		}
		ip = x
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range n.privateNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// serve serves srv on every extra listener. A listener that fails for
// another reason than the server closing reports to errc if it is free.
func (n *network) serve(srv *http.Server, log *slog.Logger, errc chan<- error) {
	for _, l := range n.listeners {
		log.Info("serving", slog.String("address", l.raw.Addr().String()), slog.Bool("private", l.cfg.Private),
			slog.Bool("mutual_tls", l.cfg.ClientCAFile != ""))
		go func() {
			err := srv.Serve(l.tls)
			if err == nil || errors.Is(err, http.ErrServerClosed) {
				return
			}
			select {
			case errc <- fmt.Errorf("listener %s: %w", l.raw.Addr(), err):
			default:
			}
		}()
	}
}

// ListenerAddrs returns the addresses of the extra listeners, in
// configuration order.
func (s *Server) ListenerAddrs() []net.Addr {
	if s.net == nil {
		return nil
	}
	out := make([]net.Addr, len(s.net.listeners))
	for i, l := range s.net.listeners {
		out[i] = l.raw.Addr()
	}
	return out
}

// Access kinds of the workspace network rules.
const (
	accessIngestion = "ingestion"
	accessQuery     = "query"
)

// networkDenied is the 403 a public request gets for a workspace closed to
// public networks. Azure answers InsufficientAccessError; the message and
// innererror say that the network, not the credentials, is the reason.
func networkDenied(kind, workspace string) *api.Error {
	return &api.Error{Status: http.StatusForbidden, Code: "InsufficientAccessError",
		Message: "The provided credentials have insufficient access to perform the requested operation",
		InnerError: &api.InnerError{Code: "NetworkAccessDenied",
			Message: fmt.Sprintf("Public network access for %s is disabled on workspace '%s'. Connect through a private listener or a configured private network.", kind, workspace)}}
}

// workspaceOpen reports whether public requests of the given kind may reach
// ws: its publicNetworkAccessFor* is Enabled and no private link scope
// holding it is PrivateOnly for that kind.
func (s *Server) workspaceOpen(ctx context.Context, ws catalog.Workspace, kind string) (bool, error) {
	setting := ws.PublicNetworkAccessForQuery
	if kind == accessIngestion {
		setting = ws.PublicNetworkAccessForIngestion
	}
	// An empty value is the default, Enabled; anything else but Enabled
	// (Disabled, SecuredByPerimeter) closes the workspace to public networks.
	if setting != "" && !strings.EqualFold(setting, catalog.NetworkAccessEnabled) {
		return false, nil
	}
	if s.net == nil || s.net.scopes == nil {
		return true, nil
	}
	ing, q, err := s.net.scopes.PrivateOnlyModes(ctx, ws.ID())
	if err != nil {
		return false, fmt.Errorf("private link scopes of %s: %w", ws.ID(), err)
	}
	if kind == accessIngestion {
		return !ing, nil
	}
	return !q, nil
}

// queryNetworkGate is the query API's network hook: called for every
// workspace a query request reads, it refuses public requests to a
// workspace closed to public queries. It fails closed.
func (s *Server) queryNetworkGate(ctx context.Context, w query.Workspace) error {
	if originFrom(ctx).private {
		return nil
	}
	// The generation is read before the catalog, so a write racing with
	// this check leaves an entry that no longer matches.
	gen := s.catalog.Generation()
	if s.net != nil {
		if g, ok := s.net.openQueries.Load(w.CustomerID); ok && g.(uint64) == gen {
			return nil
		}
	}
	ws, err := s.catalog.WorkspaceByCustomerID(ctx, w.CustomerID)
	if err != nil {
		return fmt.Errorf("network access of workspace %s: %w", w.CustomerID, err)
	}
	open, err := s.workspaceOpen(ctx, ws, accessQuery)
	if err != nil {
		return err
	}
	if !open {
		return networkDenied(accessQuery, w.CustomerID)
	}
	if s.net != nil {
		s.net.openQueries.Store(w.CustomerID, gen)
	}
	return nil
}

// admitNetwork applies the network rules of ingestion routes before their
// handler: a public request to a data collection rule with any destination
// workspace closed to public ingestion is refused with 403. It reports
// whether the request may go on; if not, the answer is written. Query
// routes are checked per workspace by the query API (queryNetworkGate).
func (s *Server) admitNetwork(w http.ResponseWriter, r *http.Request, audience string) bool {
	if audience != identity.AudienceIngestion || originFrom(r.Context()).private {
		return true
	}
	id := r.PathValue("immutableId")
	if id == "" {
		return true
	}
	ctx := r.Context()
	gen := s.catalog.Generation()
	if s.net != nil {
		if g, ok := s.net.openRules.Load(id); ok && g.(uint64) == gen {
			return true
		}
	}
	dcr, err := s.catalog.DataCollectionRuleByImmutableID(ctx, id)
	if err != nil {
		if isCatalogNotFound(err) {
			return true // the ingestion API answers an unknown rule itself
		}
		api.WriteError(w, r, s.log, fmt.Errorf("network access of data collection rule %s: %w", id, err))
		return false
	}
	if dcr.Properties.Destinations == nil {
		return true
	}
	for _, d := range dcr.Properties.Destinations.LogAnalytics {
		ws, err := s.catalog.WorkspaceByResourceID(ctx, d.WorkspaceResourceID)
		if err != nil {
			if isCatalogNotFound(err) {
				continue // the ingestion API reports a missing destination
			}
			api.WriteError(w, r, s.log, fmt.Errorf("network access of workspace %s: %w", d.WorkspaceResourceID, err))
			return false
		}
		open, err := s.workspaceOpen(ctx, ws, accessIngestion)
		if err != nil {
			api.WriteError(w, r, s.log, err)
			return false
		}
		if !open {
			s.log.LogAttrs(ctx, slog.LevelInfo, "public ingestion refused by network rules",
				slog.String("correlation_id", api.CorrelationIDFrom(ctx)),
				slog.String("workspace", ws.CustomerID), slog.String("remote", r.RemoteAddr))
			api.WriteError(w, r, s.log, networkDenied(accessIngestion, ws.CustomerID))
			return false
		}
	}
	if s.net != nil {
		s.net.openRules.Store(id, gen)
	}
	return true
}

// isCatalogNotFound reports whether err is a catalog "not found".
func isCatalogNotFound(err error) bool {
	if errors.Is(err, catalog.ErrNotFound) {
		return true
	}
	var c api.Coded
	if errors.As(err, &c) {
		_, kind := c.AzureError()
		return kind == api.KindNotFound
	}
	return false
}
