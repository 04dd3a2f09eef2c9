// Package kubetest is an in-process stand-in for a Kubernetes API server,
// for tests and benchmarks of custos-agent's Kubernetes mode where no
// cluster exists. It serves the core/v1 resources the agent reads (pods,
// nodes, services, events, namespaces) over HTTPS with bearer-token
// authentication and per-token authorization, with real list and watch
// semantics: resource versions, watches resumed from a resource version,
// the watch-list protocol (sendInitialEvents with the initial-events-end
// bookmark) that client-go's reflectors use by default, spec.nodeName field
// selectors, and watch timeouts; and coordination.k8s.io/v1 leases (get,
// create, update with resource-version conflicts) for leader election,
// authorized by namespaced Roles. It is not imported by custos-agent itself.
package kubetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Rules decide whether verb ("list", "watch") on resource ("pods",
// "nodes", ...) is allowed, as a ServiceAccount's RBAC rules would. nil
// allows everything.
type Rules func(verb, resource string) bool

// Options configure a Server.
type Options struct {
	// Tokens are the accepted bearer tokens and what each may do; any
	// other token is refused with 401, a request its rules do not allow
	// with 403. At least one is required.
	Tokens map[string]Rules
	// Roles are what tokens may do with namespaced resources of other API
	// groups (coordination.k8s.io leases), as Roles bound in a namespace.
	// A token without Roles may do nothing there, unless its Tokens rules
	// are nil (everything allowed).
	Roles map[string]RoleRules
}

// Server is a running API server substitute. Safe for concurrent use.
type Server struct {
	// URL is the https base URL; clients trust Certificate().
	URL string
	ts  *httptest.Server
	o   Options

	mu       sync.Mutex // guards everything below
	rv       uint64
	objects  map[string]map[string]object // resource → namespace/name → object
	history  []change
	watchers map[*watcher]struct{}
	requests map[string]int // "verb resource" → count
	leases   map[string]*coordinationv1.Lease
}

type object struct {
	rv   uint64
	node string // pods: spec.nodeName
	ns   string
	data json.RawMessage
}

type change struct {
	resource string
	typ      string
	obj      object
}

type watcher struct {
	resource string
	ns, node string
	ch       chan change
	dropped  bool
}

// resources maps a resource to its kind and whether it is namespaced.
var resources = map[string]struct {
	kind       string
	namespaced bool
}{
	"pods": {"Pod", true}, "services": {"Service", true}, "events": {"Event", true},
	"nodes": {"Node", false}, "namespaces": {"Namespace", false},
}

// watchBuffer bounds the changes queued for one watcher; a watcher that
// falls this far behind is closed and its client re-lists, as with a real
// API server.
const watchBuffer = 1 << 16

// New starts a Server on a loopback port.
func New(o Options) (*Server, error) {
	if len(o.Tokens) == 0 {
		return nil, errors.New("kubetest: at least one token is required")
	}
	s := &Server{o: o, objects: map[string]map[string]object{}, watchers: map[*watcher]struct{}{}, requests: map[string]int{},
		leases: map[string]*coordinationv1.Lease{}}
	for r := range resources {
		s.objects[r] = map[string]object{}
	}
	s.ts = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	return s, nil
}

// Certificate returns the server's certificate (DER), for the client's CA file.
func (s *Server) Certificate() []byte { return s.ts.Certificate().Raw }

// Close stops the server and ends every watch.
func (s *Server) Close() {
	s.mu.Lock()
	for w := range s.watchers {
		close(w.ch)
		delete(s.watchers, w)
	}
	s.mu.Unlock()
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Requests returns how often each "verb resource" was served.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

func resourceOf(obj any) (string, metav1.Object, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Kind, o.APIVersion = "Pod", "v1"
		return "pods", o, nil
	case *corev1.Node:
		o.Kind, o.APIVersion = "Node", "v1"
		return "nodes", o, nil
	case *corev1.Service:
		o.Kind, o.APIVersion = "Service", "v1"
		return "services", o, nil
	case *corev1.Event:
		o.Kind, o.APIVersion = "Event", "v1"
		return "events", o, nil
	case *corev1.Namespace:
		o.Kind, o.APIVersion = "Namespace", "v1"
		return "namespaces", o, nil
	}
	return "", nil, fmt.Errorf("kubetest: unsupported object %T", obj)
}

// Apply creates or replaces obj (a *corev1.Pod, Node, Service, Event or
// Namespace; its resource version and UID are set here) and notifies the
// watchers with ADDED or MODIFIED.
func (s *Server) Apply(obj any) error { return s.mutate(obj, false) }

// Delete removes obj and notifies the watchers with DELETED.
func (s *Server) Delete(obj any) error { return s.mutate(obj, true) }

func (s *Server) mutate(obj any, del bool) error {
	res, m, err := resourceOf(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := m.GetNamespace() + "/" + m.GetName()
	_, exists := s.objects[res][key]
	if del && !exists {
		return fmt.Errorf("kubetest: %s %s not found", res, key)
	}
	s.rv++
	m.SetResourceVersion(strconv.FormatUint(s.rv, 10))
	if m.GetUID() == "" {
		m.SetUID(typesUID(res, key))
	}
	if ct := m.GetCreationTimestamp(); ct.IsZero() {
		m.SetCreationTimestamp(metav1.NewTime(time.Now().UTC().Truncate(time.Second)))
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("kubetest: encode %s %s: %w", res, key, err)
	}
	o := object{rv: s.rv, ns: m.GetNamespace(), data: data}
	if p, ok := obj.(*corev1.Pod); ok {
		o.node = p.Spec.NodeName
	}
	typ := "ADDED"
	switch {
	case del:
		typ = "DELETED"
		delete(s.objects[res], key)
	case exists:
		typ = "MODIFIED"
		fallthrough
	default:
		s.objects[res][key] = o
	}
	c := change{resource: res, typ: typ, obj: o}
	s.history = append(s.history, c)
	for w := range s.watchers {
		if w.resource != res || w.dropped {
			continue
		}
		select {
		case w.ch <- c:
		default: // too slow: end the watch; the client re-lists
			w.dropped = true
			close(w.ch)
			delete(s.watchers, w)
		}
	}
	return nil
}

func typesUID(res, key string) types.UID {
	return types.UID(fmt.Sprintf("%s-%x", strings.TrimSuffix(res, "s"), hash(key)))
}

func hash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

type status struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Reason     string `json:"reason"`
	Code       int    `json:"code"`
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(status{Kind: "Status", APIVersion: "v1", Status: "Failure", Message: msg, Reason: reason, Code: code})
}

// route parses /api/v1/{resource} and /api/v1/namespaces/{ns}/{resource}.
func route(path string) (resource, ns string, ok bool) {
	p, found := strings.CutPrefix(path, "/api/v1/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) == 1:
		_, ok = resources[parts[0]]
		return parts[0], "", ok
	case len(parts) == 3 && parts[0] == "namespaces":
		r, known := resources[parts[2]]
		return parts[2], parts[1], known && r.namespaced
	}
	return "", "", false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	rules, known := s.o.Tokens[tok]
	if !ok || !known {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	if strings.HasPrefix(r.URL.Path, leasePrefix) {
		s.serveLease(w, r, tok)
		return
	}
	res, ns, ok := route(r.URL.Path)
	if !ok || r.Method != http.MethodGet {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	q := r.URL.Query()
	verb := "list"
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		verb = "watch"
	}
	if rules != nil && !rules(verb, res) {
		s.mu.Lock()
		s.requests["forbidden "+verb+" "+res]++
		s.mu.Unlock()
		writeStatus(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("%s is forbidden: cannot %s resource %q", res, verb, res))
		return
	}
	node := ""
	if fs := q.Get("fieldSelector"); fs != "" {
		v, ok := strings.CutPrefix(fs, "spec.nodeName=")
		if !ok || res != "pods" || strings.ContainsAny(v, ",=!") {
			writeStatus(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("field selector %q is not supported by the substitute", fs))
			return
		}
		node = v
	}
	s.mu.Lock()
	s.requests[verb+" "+res]++
	s.mu.Unlock()
	if verb == "list" {
		s.list(w, res, ns, node)
		return
	}
	s.watch(w, r, res, ns, node)
}

func matches(o object, ns, node string) bool {
	return (ns == "" || o.ns == ns) && (node == "" || o.node == node)
}

func (s *Server) list(w http.ResponseWriter, res, ns, node string) {
	s.mu.Lock()
	items := make([]json.RawMessage, 0, len(s.objects[res]))
	for _, o := range s.objects[res] {
		if matches(o, ns, node) {
			items = append(items, o.data)
		}
	}
	rv := s.rv
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"kind": resources[res].kind + "List", "apiVersion": "v1",
		"metadata": map[string]string{"resourceVersion": strconv.FormatUint(rv, 10)}, "items": items,
	})
}

type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, res, ns, node string) {
	q := r.URL.Query()
	initial := q.Get("sendInitialEvents") == "true"
	from, _ := strconv.ParseUint(q.Get("resourceVersion"), 10, 64)
	timeout := 30 * time.Minute
	if n, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && n > 0 {
		timeout = time.Duration(n) * time.Second
	}
	wt := &watcher{resource: res, ns: ns, node: node, ch: make(chan change, watchBuffer)}
	// Under the lock: what is sent first (the current objects, or history
	// after from) and the subscription, so that nothing falls in between.
	s.mu.Lock()
	var first []watchEvent
	if initial || from == 0 {
		for _, o := range s.objects[res] {
			if matches(o, ns, node) {
				first = append(first, watchEvent{"ADDED", o.data})
			}
		}
		if initial {
			bm, _ := json.Marshal(map[string]any{"kind": resources[res].kind, "apiVersion": "v1", "metadata": map[string]any{
				"resourceVersion": strconv.FormatUint(s.rv, 10), "annotations": map[string]string{"k8s.io/initial-events-end": "true"}}})
			first = append(first, watchEvent{"BOOKMARK", bm})
		}
	} else {
		for _, c := range s.history {
			if c.resource == res && c.obj.rv > from && matches(c.obj, ns, node) {
				first = append(first, watchEvent{c.typ, c.obj.data})
			}
		}
	}
	s.watchers[wt] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, wt)
		s.mu.Unlock()
	}()
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, ev := range first {
		if enc.Encode(ev) != nil {
			return
		}
	}
	if fl != nil {
		fl.Flush()
	}
	end := time.NewTimer(timeout)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case c, ok := <-wt.ch:
			if !ok {
				return
			}
			if !matches(c.obj, ns, node) {
				continue
			}
			if enc.Encode(watchEvent{c.typ, c.obj.data}) != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}
