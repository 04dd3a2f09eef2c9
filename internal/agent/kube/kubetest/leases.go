package kubetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoleRules decide whether verb ("get", "create", "update", ...) on a
// resource of an API group ("coordination.k8s.io", "leases") in namespace
// is allowed, as a namespaced Role bound to the token's ServiceAccount
// would.
type RoleRules func(verb, group, resource, namespace string) bool

// leasePrefix is the path of the coordination.k8s.io/v1 API group.
const leasePrefix = "/apis/coordination.k8s.io/v1/namespaces/"

// Lease returns a copy of the lease namespace/name and whether it exists.
func (s *Server) Lease(namespace, name string) (coordinationv1.Lease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[namespace+"/"+name]
	if !ok {
		return coordinationv1.Lease{}, false
	}
	return *l.DeepCopy(), true
}

// serveLease serves get, create and update of coordination.k8s.io/v1
// leases with optimistic concurrency (a stale resourceVersion is a 409
// Conflict), what client-go's leader election uses.
func (s *Server) serveLease(w http.ResponseWriter, r *http.Request, tok string) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, leasePrefix), "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[1] != "leases" || parts[0] == "" {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	ns, name := parts[0], ""
	if len(parts) == 3 {
		name = parts[2]
	}
	var verb string
	switch {
	case r.Method == http.MethodGet && name != "":
		verb = "get"
	case r.Method == http.MethodPost && name == "":
		verb = "create"
	case r.Method == http.MethodPut && name != "":
		verb = "update"
	default:
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the substitute serves get, create and update of leases")
		return
	}
	allowed := s.o.Tokens[tok] == nil // a token with nil rules may do anything
	if rr := s.o.Roles[tok]; rr != nil {
		allowed = rr(verb, "coordination.k8s.io", "leases", ns)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !allowed {
		s.requests["forbidden "+verb+" leases "+ns]++
		writeStatus(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("leases.coordination.k8s.io is forbidden: cannot %s leases in the namespace %q", verb, ns))
		return
	}
	s.requests[verb+" leases"]++
	if verb == "get" {
		l, ok := s.leases[ns+"/"+name]
		if !ok {
			writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("leases.coordination.k8s.io %q not found", name))
			return
		}
		writeLease(w, http.StatusOK, l)
		return
	}
	var l coordinationv1.Lease
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &l)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "lease body: "+err.Error())
		return
	}
	if l.Namespace == "" {
		l.Namespace = ns
	}
	if l.Namespace != ns || l.Name == "" || (name != "" && l.Name != name) {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "the lease's namespace and name do not match the path")
		return
	}
	key := ns + "/" + l.Name
	cur, exists := s.leases[key]
	switch {
	case verb == "create" && exists:
		writeStatus(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("leases.coordination.k8s.io %q already exists", l.Name))
		return
	case verb == "update" && !exists:
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("leases.coordination.k8s.io %q not found", l.Name))
		return
	case verb == "update" && l.ResourceVersion != cur.ResourceVersion:
		writeStatus(w, http.StatusConflict, "Conflict", fmt.Sprintf("Operation cannot be fulfilled on leases.coordination.k8s.io %q: the object has been modified; please apply your changes to the latest version and try again", l.Name))
		return
	}
	s.rv++
	l.Kind, l.APIVersion = "Lease", "coordination.k8s.io/v1"
	l.ResourceVersion = strconv.FormatUint(s.rv, 10)
	if exists {
		l.UID, l.CreationTimestamp = cur.UID, cur.CreationTimestamp
	} else {
		l.UID = typesUID("leases", key)
		l.CreationTimestamp = metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	}
	s.leases[key] = &l
	code := http.StatusOK
	if verb == "create" {
		code = http.StatusCreated
	}
	writeLease(w, code, &l)
}

func writeLease(w http.ResponseWriter, code int, l *coordinationv1.Lease) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(l)
}
