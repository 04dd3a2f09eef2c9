package arm

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/enroll"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Kubernetes clusters enrolled with custos-agent are
// Microsoft.Kubernetes/connectedClusters resources (api-version 2024-01-01)
// with a system-assigned managed identity. They are created only by
// enrollment (POST /enroll/connectedClusters with a one-time token from
// POST {rg}/providers/Microsoft.Kubernetes/createEnrollmentToken); rules are
// associated with them as with machines, and the cluster's identity reads
// its rules from {clusterId}/agentConfiguration.
const (
	pClustersK8sSub        = pSubscription + "/providers/Microsoft.Kubernetes/connectedClusters"
	pClustersK8sRG         = pResourceGroup + "/providers/Microsoft.Kubernetes/connectedClusters"
	pClusterK8s            = pClustersK8sRG + "/{connectedClusterName}"
	pClusterEnrollToken    = pResourceGroup + "/providers/Microsoft.Kubernetes/createEnrollmentToken"
	pClusterAgentConfig    = pClusterK8s + enroll.ConfigurationSuffix
	pClusterAssocs         = pClusterK8s + "/providers/Microsoft.Insights/dataCollectionRuleAssociations"
	pClusterAssoc          = pClusterAssocs + "/{associationName}"
	pClusterIdentityAction = pClusterK8s + "/{identityAction}"

	actionConnectedClusterRead   rbac.Action = "Microsoft.Kubernetes/connectedClusters/read"
	actionConnectedClusterWrite  rbac.Action = "Microsoft.Kubernetes/connectedClusters/write"
	actionConnectedClusterDelete rbac.Action = "Microsoft.Kubernetes/connectedClusters/delete"
)

// ConnectedClusterRoutes are the routes of connected clusters, their
// enrollment tokens, associations and agent configuration.
func (a *API) ConnectedClusterRoutes() []api.Route {
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: a.wrap(h)}
	}
	return []api.Route{
		r(http.MethodGet, pClustersK8sSub, actionConnectedClusterRead, a.connectedClusterList().scope(a), a.listConnectedClusters),
		r(http.MethodGet, pClustersK8sRG, actionConnectedClusterRead, a.connectedClusterList().scope(a), a.listConnectedClusters),
		r(http.MethodGet, pClusterK8s, actionConnectedClusterRead, connectedClusterScope, a.getConnectedCluster),
		r(http.MethodDelete, pClusterK8s, actionConnectedClusterDelete, connectedClusterScope, a.deleteConnectedCluster),
		r(http.MethodPost, pClusterIdentityAction, actionConnectedClusterWrite, connectedClusterScope, a.setConnectedClusterIdentity),
		r(http.MethodPost, pClusterEnrollToken, actionConnectedClusterWrite, resourceGroupScope, a.createClusterEnrollmentToken),
		r(http.MethodGet, pClusterAssocs, actionAssocRead, connectedClusterScope, a.listClusterAssociations),
		r(http.MethodPut, pClusterAssoc, actionAssocWrite, clusterAssocScope, a.putClusterAssociation),
		r(http.MethodDelete, pClusterAssoc, actionAssocDelete, clusterAssocScope, a.deleteClusterAssociation),
		// The agents' configuration: ingestion-audience tokens of the
		// cluster's own identity only (checked in the handler; enrollment
		// grants the identity Reader on its cluster).
		{Method: http.MethodGet, Pattern: pClusterAgentConfig, Audience: identity.AudienceIngestion, Action: actionConnectedClusterRead,
			Scope: connectedClusterScope, Handler: a.wrap(a.getClusterAgentConfiguration)},
	}
}

func connectedClusterID(r *http.Request) string {
	return catalog.ConnectedClusterResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("connectedClusterName"))
}

func connectedClusterScope(r *http.Request) rbac.Scope { return rbac.Scope(connectedClusterID(r)) }

func clusterAssocScope(r *http.Request) rbac.Scope {
	return rbac.Scope(connectedClusterID(r) + "/providers/" + catalog.TypeDCRAssociation + "/" + r.PathValue("associationName"))
}

type connectedClusterWire struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Location   string                `json:"location"`
	Tags       map[string]string     `json:"tags"`
	Identity   machineIdentity       `json:"identity"`
	Properties connectedClusterProps `json:"properties"`
	SystemData *systemData           `json:"systemData,omitempty"`
}

type connectedClusterProps struct {
	ProvisioningState string `json:"provisioningState"`
	ConnectivityState string `json:"connectivityStatus"`
	Distribution      string `json:"distribution,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	AgentVersion      string `json:"agentVersion,omitempty"`
	// IdentityEnabled is Custos's: false while the identity is disabled.
	IdentityEnabled bool `json:"identityEnabled"`
}

func toConnectedClusterWire(cl *catalog.ConnectedCluster) connectedClusterWire {
	tags := cl.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	state := "Connected"
	if !cl.IdentityEnabled {
		state = "Offline"
	}
	return connectedClusterWire{ID: cl.ID(), Name: cl.Name, Type: catalog.TypeConnectedCluster, Location: cl.Location, Tags: tags,
		Identity: machineIdentity{Type: "SystemAssigned", PrincipalID: cl.PrincipalID, TenantID: cl.TenantID, ClientID: cl.ClientID},
		Properties: connectedClusterProps{ProvisioningState: "Succeeded", ConnectivityState: state, Distribution: cl.Distribution,
			KubernetesVersion: cl.KubernetesVersion, AgentVersion: cl.AgentVersion, IdentityEnabled: cl.IdentityEnabled},
		SystemData: NewSystemData(cl.Audit)}
}

// connectedClusterList lists the connected clusters below the path's
// subscription or resource group that the caller may read.
func (a *API) connectedClusterList() filteredList[catalog.ConnectedCluster] {
	return filteredList[catalog.ConnectedCluster]{act: actionConnectedClusterRead, id: (*catalog.ConnectedCluster).ID,
		load: func(r *http.Request) ([]catalog.ConnectedCluster, error) {
			return a.cat.ConnectedClusters(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		}}
}

func (a *API) listConnectedClusters(w http.ResponseWriter, r *http.Request) error {
	return writeFilteredList(a, w, r, a.connectedClusterList(), toConnectedClusterWire)
}

func (a *API) getConnectedCluster(w http.ResponseWriter, r *http.Request) error {
	cl, err := a.cat.ConnectedCluster(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("connectedClusterName"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"`+cl.ETag+`"`)
	api.WriteJSON(w, http.StatusOK, toConnectedClusterWire(&cl))
	return nil
}

func (a *API) deleteConnectedCluster(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteConnectedCluster(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("connectedClusterName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}

// setConnectedClusterIdentity is POST {cluster}/disableIdentity or
// /enableIdentity (Custos's): a disabled identity gets no tokens, so the
// cluster's agents stop sending and say so.
func (a *API) setConnectedClusterIdentity(w http.ResponseWriter, r *http.Request) error {
	var enabled bool
	switch r.PathValue("identityAction") {
	case "enableIdentity":
		enabled = true
	case "disableIdentity":
	default:
		return api.Errorf(http.StatusNotFound, "InvalidResourceType", "The action '%s' is not supported on connected clusters; use enableIdentity or disableIdentity.",
			truncateArm(r.PathValue("identityAction"), 64))
	}
	cl, err := a.cat.SetConnectedClusterIdentityEnabled(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("connectedClusterName"), enabled, actor(r))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, toConnectedClusterWire(&cl))
	return nil
}

func truncateArm(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (a *API) createClusterEnrollmentToken(w http.ResponseWriter, r *http.Request) error {
	return a.writeEnrollmentToken(w, r, a.cat.CreateClusterEnrollmentToken, enroll.ClusterPath)
}

type clusterAssocWire struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Etag       string            `json:"etag"`
	Properties clusterAssocProps `json:"properties"`
	SystemData *systemData       `json:"systemData,omitempty"`
}

type clusterAssocProps struct {
	DataCollectionRuleID string `json:"dataCollectionRuleId"`
	Description          string `json:"description,omitempty"`
	ProvisioningState    string `json:"provisioningState"`
}

func toClusterAssocWire(x *catalog.ClusterDCRAssociation) clusterAssocWire {
	return clusterAssocWire{ID: x.ID(), Name: x.Name, Type: catalog.TypeDCRAssociation, Etag: `"` + x.ETag + `"`,
		Properties: clusterAssocProps{DataCollectionRuleID: x.DataCollectionRuleID, Description: x.Description, ProvisioningState: "Succeeded"},
		SystemData: NewSystemData(x.Audit)}
}

func (a *API) listClusterAssociations(w http.ResponseWriter, r *http.Request) error {
	list, err := a.cat.ClusterDCRAssociations(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("connectedClusterName"))
	if err != nil {
		return err
	}
	out := make([]clusterAssocWire, 0, len(list))
	for i := range list {
		out = append(out, toClusterAssocWire(&list[i]))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"value": out})
	return nil
}

func (a *API) putClusterAssociation(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r, a.maxBody)
	if err != nil {
		return err
	}
	var in struct {
		Properties struct {
			DataCollectionRuleID string `json:"dataCollectionRuleId"`
			Description          string `json:"description"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return catalog.Invalid("InvalidRequestContent", "", "The request content is not valid JSON.")
	}
	x, created, err := a.cat.PutClusterDCRAssociation(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("connectedClusterName"), catalog.ClusterDCRAssociation{Name: r.PathValue("associationName"),
			DataCollectionRuleID: in.Properties.DataCollectionRuleID, Description: in.Properties.Description}, actor(r))
	if err != nil {
		return err
	}
	WritePut(w, created, "", toClusterAssocWire(&x))
	return nil
}

func (a *API) deleteClusterAssociation(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteClusterDCRAssociation(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("connectedClusterName"), r.PathValue("associationName"))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}

// getClusterAgentConfiguration serves the rules associated with the cluster
// to the cluster's own identity only, with an ETag (If-None-Match → 304).
func (a *API) getClusterAgentConfiguration(w http.ResponseWriter, r *http.Request) error {
	cfg, err := a.cat.ClusterConfigurationFor(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("connectedClusterName"))
	if err != nil {
		return err
	}
	return writeAgentConfiguration(w, r, "connected cluster", cfg.Cluster.ID(), cfg.Cluster.PrincipalID, cfg.DataCollectionRules)
}

var clusterTokenRE = regexp.MustCompile(`^` + regexp.QuoteMeta(enroll.TokenPrefix) + `[A-Za-z0-9_-]{43}$`)

// ParseClusterEnrollRequest decodes and checks a cluster enrollment request
// body: strict JSON, a well-formed token, a valid cluster name, bounded
// printable metadata and a supported public key. It never panics.
func ParseClusterEnrollRequest(contentType string, body []byte) (enroll.Request, []byte, error) {
	var req enroll.Request
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return req, nil, api.Errorf(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The enrollment request must be application/json.")
	}
	if len(body) > enroll.MaxRequestBytes {
		return req, nil, api.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The enrollment request exceeds %d bytes.", enroll.MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return req, nil, api.Errorf(http.StatusBadRequest, "InvalidRequestContent", "The enrollment request is not one valid JSON object.")
	}
	if !clusterTokenRE.MatchString(req.EnrollmentToken) {
		return req, nil, errInvalidEnrollmentToken
	}
	for _, f := range []struct{ name, v string }{{"hostname", req.Hostname}, {"osType", req.OSType}, {"osName", req.OSName},
		{"osVersion", req.OSVersion}, {"agentVersion", req.AgentVersion}, {"distribution", req.Distribution}, {"kubernetesVersion", req.KubernetesVersion}} {
		if len(f.v) > 255 || strings.IndexFunc(f.v, func(r rune) bool { return r < 0x20 || r == 0x7f || !unicode.IsPrint(r) && r != ' ' }) >= 0 {
			return req, nil, api.Errorf(http.StatusBadRequest, "InvalidRequestContent", "The property '%s' must be at most 255 printable characters.", f.name)
		}
	}
	if !catalog.ValidConnectedClusterName(req.Name) {
		return req, nil, api.Errorf(http.StatusBadRequest, "InvalidResourceName",
			"The connected cluster name '%s' is invalid. It must be 1 to 63 letters, digits, '-', '_' and '.', start with a letter or digit and not end with '.'.",
			strings.ToValidUTF8(truncateArm(req.Name, 80), "?"))
	}
	pub, err := req.PublicKey.PublicKey()
	if err != nil {
		return req, nil, api.Errorf(http.StatusBadRequest, "InvalidRequestContent",
			"The property 'publicKey' must be an EC P-256 or RSA (2048 to 4096 bits) JSON Web Key.")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return req, nil, api.Errorf(http.StatusBadRequest, "InvalidRequestContent", "The public key cannot be encoded.")
	}
	return req, der, nil
}

var errInvalidEnrollmentToken = api.Errorf(http.StatusUnauthorized, "InvalidEnrollmentToken", "The enrollment token is invalid, expired or already used.")

// ClusterEnrollmentHandler serves POST enroll.ClusterPath. It is
// authenticated by the one-time token in the body alone, so the server
// mounts it outside the bearer-authenticated routes. A cluster presents the
// token and the public key its agents will sign assertions with, and
// receives the connectedClusters resource and its managed identity.
func (a *API) ClusterEnrollmentHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fail := func(err error) {
			var c api.Coded
			if errors.As(err, &c) {
				code, _ := c.AzureError()
				a.log.LogAttrs(r.Context(), slog.LevelWarn, "cluster enrollment rejected", slog.String("code", code), slog.String("remote_addr", r.RemoteAddr))
			} else {
				a.log.LogAttrs(r.Context(), slog.LevelError, "cluster enrollment failed", slog.Any("error", err))
			}
			api.WriteError(w, r, a.log, err)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(api.Errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The enrollment endpoint only accepts POST."))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, enroll.MaxRequestBytes))
		if err != nil {
			fail(api.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The enrollment request exceeds %d bytes.", enroll.MaxRequestBytes))
			return
		}
		req, der, err := ParseClusterEnrollRequest(r.Header.Get("Content-Type"), body)
		clear(body)
		if err != nil {
			fail(err)
			return
		}
		pub, _ := req.PublicKey.PublicKey()
		kid, err := enroll.Thumbprint(pub)
		if err != nil {
			fail(api.Errorf(http.StatusBadRequest, "InvalidRequestContent", "The public key is not supported."))
			return
		}
		objectID, err1 := newGUIDText()
		appID, err2 := newGUIDText()
		keyID, err3 := newGUIDText()
		if err := errors.Join(err1, err2, err3); err != nil {
			fail(err)
			return
		}
		cl, err := a.cat.EnrollCluster(r.Context(), catalog.ClusterEnrollment{
			TokenHash: identity.HashEnrollmentToken(req.EnrollmentToken), Name: req.Name, Distribution: req.Distribution,
			KubernetesVersion: req.KubernetesVersion, AgentVersion: req.AgentVersion, ObjectID: objectID, AppID: appID,
			Key: identity.KeyCredential{KeyID: keyID, DisplayName: "cluster key " + kid, PublicKey: der, NotBefore: a.now().UTC()},
		})
		switch {
		case errors.Is(err, identity.ErrEnrollmentTokenInvalid):
			fail(errInvalidEnrollmentToken)
			return
		case errors.Is(err, identity.ErrConflict):
			fail(api.Errorf(http.StatusConflict, "ConnectedClusterExists",
				"A connected cluster named '%s' already exists in the token's resource group. Delete it first, or enroll under another name; the enrollment token was not used.", req.Name))
			return
		case err != nil:
			fail(fmt.Errorf("enroll cluster: %w", err))
			return
		}
		base := a.endpoint
		if base == "" {
			base = "https://" + r.Host
		}
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "cluster enrolled", slog.String("cluster_id", cl.ID()),
			slog.String("object_id", cl.PrincipalID), slog.String("remote_addr", r.RemoteAddr))
		api.WriteJSON(w, http.StatusCreated, enroll.Response{
			ID: cl.ID(), Name: cl.Name, Location: cl.Location, TenantID: cl.TenantID, ClientID: cl.ClientID, PrincipalID: cl.PrincipalID,
			KeyID: kid, AuthorityHost: base, TokenEndpoint: base + "/" + cl.TenantID + "/oauth2/v2.0/token",
			ConfigurationEndpoint: base + cl.ID() + enroll.ConfigurationSuffix + "?api-version=" + enroll.ConfigurationAPIVersion,
		})
	})
}
