package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"custos/internal/enroll"
)

// machineTokens is the TokenSource of an enrolled machine: access tokens of
// its system-assigned managed identity, obtained with client assertions
// signed by the machine key (package enroll). Safe for concurrent use.
type machineTokens struct{ ts *enroll.TokenSource }

func (m machineTokens) Token(ctx context.Context) (Secret, error) {
	tok, err := m.ts.Token(ctx, enroll.ScopeIngestion)
	if err != nil {
		var ae *enroll.APIError
		if errors.As(err, &ae) && ae.Rejected() {
			return "", fmt.Errorf("%w: the server refused the machine identity: %v", ErrAuth, err)
		}
		return "", err
	}
	return Secret(tok.AccessToken), nil
}

func (m machineTokens) Invalidate() { m.ts.Forget() }

// ServerSource is the RuleSource of an enrolled machine: the data collection
// rules associated with it, from Custos's agent configuration endpoint,
// polled with If-None-Match. Safe for concurrent use.
type ServerSource struct {
	client *http.Client
	tokens *enroll.TokenSource
	id     *enroll.Identity

	mu      sync.Mutex // guards etag, rules, version
	etag    string
	rules   []*DCR
	version string
}

// NewServerSource returns the rule source for an enrolled identity.
func NewServerSource(client *http.Client, tokens *enroll.TokenSource, id *enroll.Identity) *ServerSource {
	return &ServerSource{client: client, tokens: tokens, id: id}
}

// Rules implements RuleSource. A rule that does not parse is an error, so
// the agent keeps its current configuration rather than dropping collection.
func (s *ServerSource) Rules(ctx context.Context) ([]*DCR, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, notModified, err := enroll.FetchConfiguration(ctx, s.client, s.tokens, s.id, s.etag)
	if err != nil {
		return nil, "", err
	}
	if notModified && s.version != "" {
		return s.rules, s.version, nil
	}
	var rules []*DCR
	h := sha256.New()
	for i, raw := range cfg.DataCollectionRules {
		d, err := ParseDCR(raw)
		if err != nil {
			return nil, "", fmt.Errorf("configuration rule %d: %w", i, err)
		}
		d.Origin = "server"
		rules = append(rules, d)
		h.Write(raw)
		h.Write([]byte{0})
	}
	s.etag, s.rules = cfg.ETag, rules
	s.version = "server:" + hex.EncodeToString(h.Sum(nil))
	return rules, s.version, nil
}

// multiSource merges rule sources; the version changes when any part does.
type multiSource []RuleSource

func (m multiSource) Rules(ctx context.Context) ([]*DCR, string, error) {
	var all []*DCR
	var versions []string
	seen := map[string]bool{}
	for _, src := range m {
		rules, v, err := src.Rules(ctx)
		if err != nil {
			return nil, "", err
		}
		for _, r := range rules {
			if seen[r.ImmutableID] {
				continue // the same rule from two sources is applied once
			}
			seen[r.ImmutableID] = true
			all = append(all, r)
		}
		versions = append(versions, v)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ImmutableID < all[j].ImmutableID })
	return all, strings.Join(versions, "+"), nil
}

// EnrollOptions configure Enroll.
type EnrollOptions struct {
	Endpoint, CAFile, Token, Dir, Name string
	Force                              bool
	// Cluster enrolls a Kubernetes cluster named Name
	// (Microsoft.Kubernetes/connectedClusters) instead of this machine; the
	// identity directory is then shared by the cluster's agent pods (a Secret).
	Cluster                         bool
	Distribution, KubernetesVersion string
}

// Enroll enrolls this machine (see package enroll): the key pair is created
// in opts.Dir and the private key never leaves it.
func Enroll(ctx context.Context, opts EnrollOptions) (*enroll.Identity, error) {
	if !strings.HasPrefix(opts.Endpoint, "https://") {
		return nil, fmt.Errorf("endpoint %q must be an https:// URL", opts.Endpoint)
	}
	h := readHostInfo()
	return enroll.Enroll(ctx, enroll.Options{Endpoint: opts.Endpoint, Token: opts.Token, CAFile: opts.CAFile, Dir: opts.Dir,
		Name: opts.Name, OSType: "Linux", OSName: h.osName, OSVersion: strings.Trim(h.osMajor+"."+h.osMinor, "."),
		AgentVersion: Version, Force: opts.Force, Cluster: opts.Cluster, Distribution: opts.Distribution,
		KubernetesVersion: opts.KubernetesVersion})
}
