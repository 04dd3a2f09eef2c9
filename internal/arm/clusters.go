package arm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/cmk"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Log Analytics dedicated clusters (Microsoft.OperationalInsights/clusters,
// api-version 2022-10-01) carry the customer-managed key of the workspaces
// linked to them through the workspace's "cluster" linked service.
const (
	pClustersSub = pSubscription + "/providers/Microsoft.OperationalInsights/clusters"
	pClustersRG  = pResourceGroup + "/providers/Microsoft.OperationalInsights/clusters"
	pCluster     = pClustersRG + "/{clusterName}"
	pLinkedSvcs  = pWorkspace + "/linkedServices"
	pLinkedSvc   = pLinkedSvcs + "/{linkedServiceName}"

	actionClusterRead         rbac.Action = "Microsoft.OperationalInsights/clusters/read"
	actionClusterWrite        rbac.Action = "Microsoft.OperationalInsights/clusters/write"
	actionClusterDelete       rbac.Action = "Microsoft.OperationalInsights/clusters/delete"
	actionLinkedServiceRead   rbac.Action = "Microsoft.OperationalInsights/workspaces/linkedServices/read"
	actionLinkedServiceWrite  rbac.Action = "Microsoft.OperationalInsights/workspaces/linkedServices/write"
	actionLinkedServiceDelete rbac.Action = "Microsoft.OperationalInsights/workspaces/linkedServices/delete"

	clusterSKU           = "CapacityReservation"
	linkedServiceCluster = "cluster"
)

// ClusterKeys builds and applies clusters' customer-managed keys.
// *cmk.Manager implements it.
type ClusterKeys interface {
	Prepare(clusterID string, spec cmk.KeySpec, prev *catalog.Cluster) (provider, config string, sealed []byte, err error)
	Provider(cl *catalog.Cluster) (crypt.KeyProvider, error)
	Probe(ctx context.Context, p crypt.KeyProvider) error
	Link(ctx context.Context, workspaceID string, cl *catalog.Cluster) error
	Unlink(ctx context.Context, workspaceID string) error
}

var _ ClusterKeys = (*cmk.Manager)(nil)

// ClusterRoutes returns the cluster and linked-service routes, which need
// keys to apply customer-managed keys to workspaces. The server registers
// them beside Routes.
func (a *API) ClusterRoutes(keys ClusterKeys) []api.Route {
	c := &clusterAPI{a: a, keys: keys}
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: a.wrap(h)}
	}
	return a.withLocks([]api.Route{
		r(http.MethodGet, pClustersSub, actionClusterRead, c.clusterList().scope(c.a), c.list),
		r(http.MethodGet, pClustersRG, actionClusterRead, c.clusterList().scope(c.a), c.list),
		r(http.MethodGet, pCluster, actionClusterRead, clusterScope, c.get),
		r(http.MethodPut, pCluster, actionClusterWrite, clusterScope, c.put),
		r(http.MethodPatch, pCluster, actionClusterWrite, clusterScope, c.patch),
		r(http.MethodDelete, pCluster, actionClusterDelete, clusterScope, c.delete),

		r(http.MethodGet, pLinkedSvcs, actionLinkedServiceRead, workspaceScope, c.listLinked),
		r(http.MethodGet, pLinkedSvc, actionLinkedServiceRead, workspaceScope, c.getLinked),
		r(http.MethodPut, pLinkedSvc, actionLinkedServiceWrite, workspaceScope, c.putLinked),
		r(http.MethodDelete, pLinkedSvc, actionLinkedServiceDelete, workspaceScope, c.deleteLinked),
	})
}

func clusterScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.ClusterResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("clusterName")))
}

type clusterAPI struct {
	a    *API
	keys ClusterKeys
}

// keyVaultPropsWire is keyVaultProperties: Azure's four members plus the
// Custos provider extension. custosSecret is write-only.
type keyVaultPropsWire struct {
	KeyVaultURI    string             `json:"keyVaultUri"`
	KeyName        string             `json:"keyName"`
	KeyVersion     string             `json:"keyVersion"`
	KeyRsaSize     int                `json:"keyRsaSize,omitempty"`
	CustosProvider string             `json:"custosProvider,omitempty"`
	CustosTransit  *cmk.TransitConfig `json:"custosTransit,omitempty"`
	CustosAzure    *cmk.AzureConfig   `json:"custosAzure,omitempty"`
	CustosPKCS11   *cmk.PKCS11Config  `json:"custosPkcs11,omitempty"`
	CustosSecret   *string            `json:"custosSecret,omitempty"`
}

type clusterIdentityWire struct {
	Type                   string          `json:"type"`
	PrincipalID            string          `json:"principalId,omitempty"`
	TenantID               string          `json:"tenantId,omitempty"`
	UserAssignedIdentities json.RawMessage `json:"userAssignedIdentities,omitempty"`
}

type clusterSkuWire struct {
	Name     string `json:"name"`
	Capacity int    `json:"capacity"`
}

type associatedWorkspaceWire struct {
	WorkspaceID   string `json:"workspaceId"`
	WorkspaceName string `json:"workspaceName"`
	ResourceID    string `json:"resourceId"`
	AssociateDate string `json:"associateDate,omitempty"`
}

type capacityReservationWire struct {
	LastSkuUpdate string `json:"lastSkuUpdate,omitempty"`
	MinCapacity   int    `json:"minCapacity"`
}

type clusterPropsWire struct {
	ClusterID                     string                    `json:"clusterId"`
	ProvisioningState             string                    `json:"provisioningState"`
	IsDoubleEncryptionEnabled     bool                      `json:"isDoubleEncryptionEnabled"`
	IsAvailabilityZonesEnabled    bool                      `json:"isAvailabilityZonesEnabled"`
	BillingType                   string                    `json:"billingType"`
	KeyVaultProperties            *keyVaultPropsWire        `json:"keyVaultProperties,omitempty"`
	AssociatedWorkspaces          []associatedWorkspaceWire `json:"associatedWorkspaces"`
	CapacityReservationProperties capacityReservationWire   `json:"capacityReservationProperties"`
	CreatedDate                   string                    `json:"createdDate"`
	LastModifiedDate              string                    `json:"lastModifiedDate"`
}

type clusterWire struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Location   string              `json:"location"`
	Tags       map[string]string   `json:"tags"`
	Identity   clusterIdentityWire `json:"identity"`
	Sku        clusterSkuWire      `json:"sku"`
	Properties clusterPropsWire    `json:"properties"`
	SystemData *systemData         `json:"systemData,omitempty"`
}

// clusterRequest is a PUT or PATCH body; read-only members of a GET answer
// are accepted and ignored.
type clusterRequest struct {
	Location   *string              `json:"location"`
	Tags       map[string]string    `json:"tags"`
	Identity   *clusterIdentityWire `json:"identity"`
	Sku        *clusterSkuWire      `json:"sku"`
	Properties *struct {
		IsDoubleEncryptionEnabled     *bool                     `json:"isDoubleEncryptionEnabled"`
		IsAvailabilityZonesEnabled    *bool                     `json:"isAvailabilityZonesEnabled"`
		BillingType                   *string                   `json:"billingType"`
		KeyVaultProperties            *keyVaultPropsWire        `json:"keyVaultProperties"`
		ClusterID                     *string                   `json:"clusterId"`
		ProvisioningState             *string                   `json:"provisioningState"`
		AssociatedWorkspaces          []associatedWorkspaceWire `json:"associatedWorkspaces"`
		CapacityReservationProperties json.RawMessage           `json:"capacityReservationProperties"`
		CreatedDate                   *string                   `json:"createdDate"`
		LastModifiedDate              *string                   `json:"lastModifiedDate"`
	} `json:"properties"`
	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

var clusterCapacities = []int{100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 25000, 50000}

func toClusterWire(cl *catalog.Cluster, wss []catalog.Workspace) clusterWire {
	p := clusterPropsWire{
		ClusterID: cl.ClusterID, ProvisioningState: "Succeeded", IsDoubleEncryptionEnabled: cl.DoubleEncryption,
		BillingType: cl.BillingType, AssociatedWorkspaces: []associatedWorkspaceWire{},
		CapacityReservationProperties: capacityReservationWire{MinCapacity: 100, LastSkuUpdate: wireTime(cl.Audit.ModifiedAt)},
		CreatedDate:                   wireTime(cl.Audit.CreatedAt), LastModifiedDate: wireTime(cl.Audit.ModifiedAt),
	}
	if cl.HasKey() {
		kv := &keyVaultPropsWire{KeyVaultURI: cl.KeyVaultURI, KeyName: cl.KeyName, KeyVersion: cl.KeyVersion,
			KeyRsaSize: cl.KeyRSASize, CustosProvider: cl.KeyProvider}
		var cfg cmk.Config
		if json.Unmarshal([]byte(cl.KeyConfig), &cfg) == nil {
			kv.CustosTransit, kv.CustosAzure, kv.CustosPKCS11 = cfg.Transit, cfg.Azure, cfg.PKCS11
		}
		p.KeyVaultProperties = kv
	}
	for _, w := range wss {
		p.AssociatedWorkspaces = append(p.AssociatedWorkspaces, associatedWorkspaceWire{
			WorkspaceID: w.CustomerID, WorkspaceName: w.Name, ResourceID: w.ID()})
	}
	tags := cl.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return clusterWire{ID: cl.ID(), Name: cl.Name, Type: catalog.TypeCluster, Location: cl.Location, Tags: tags,
		Identity: clusterIdentityWire{Type: cl.IdentityType}, Sku: clusterSkuWire{Name: cl.SKUName, Capacity: cl.SKUCapacity},
		Properties: p, SystemData: toSystemData(cl.Audit)}
}

func (c *clusterAPI) wire(ctx context.Context, cl *catalog.Cluster) (clusterWire, error) {
	wss, err := c.a.cat.ClusterWorkspaces(ctx, cl.ID())
	if err != nil {
		return clusterWire{}, err
	}
	return toClusterWire(cl, wss), nil
}

// clusterList lists the clusters below the path's subscription or resource
// group that the caller may read.
func (c *clusterAPI) clusterList() filteredList[catalog.Cluster] {
	return filteredList[catalog.Cluster]{act: actionClusterRead, id: (*catalog.Cluster).ID,
		load: func(r *http.Request) ([]catalog.Cluster, error) {
			return c.a.cat.Clusters(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		}}
}

func (c *clusterAPI) list(w http.ResponseWriter, r *http.Request) error {
	cls, err := c.clusterList().items(c.a, r)
	if err != nil {
		return err
	}
	out := list[clusterWire]{Value: []clusterWire{}}
	for i := range cls {
		cw, err := c.wire(r.Context(), &cls[i])
		if err != nil {
			return err
		}
		out.Value = append(out.Value, cw)
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (c *clusterAPI) get(w http.ResponseWriter, r *http.Request) error {
	cl, err := c.a.cat.Cluster(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("clusterName"))
	if err != nil {
		return err
	}
	cw, err := c.wire(r.Context(), &cl)
	if err != nil {
		return err
	}
	writeGet(w, "", cw)
	return nil
}

func (c *clusterAPI) put(w http.ResponseWriter, r *http.Request) error { return c.write(w, r, false) }

func (c *clusterAPI) patch(w http.ResponseWriter, r *http.Request) error { return c.write(w, r, true) }

// write handles PUT (replace) and PATCH (merge into the stored cluster).
func (c *clusterAPI) write(w http.ResponseWriter, r *http.Request, patch bool) error {
	var req clusterRequest
	if err := api.DecodeJSON(r, &req, c.a.maxBody); err != nil {
		return err
	}
	ctx := r.Context()
	sub, rg, name := r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("clusterName")
	var prev *catalog.Cluster
	if old, err := c.a.cat.Cluster(ctx, sub, rg, name); err == nil {
		prev = &old
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	if patch && prev == nil {
		return catalog.Invalid("ResourceNotFound", "", "The cluster '%s' does not exist; create it with PUT.", name)
	}
	cl := catalog.Cluster{SubscriptionID: sub, ResourceGroup: rg, Name: name, IdentityType: "SystemAssigned",
		SKUName: clusterSKU, SKUCapacity: 100, BillingType: "Cluster"}
	if patch {
		cl = *prev
	}
	if req.Location != nil {
		cl.Location = *req.Location
	}
	if !patch || req.Tags != nil {
		cl.Tags = req.Tags
	}
	if !patch && cl.Location == "" {
		return catalog.Invalid("LocationRequired", "location", "The location property is required for this definition.")
	}
	if err := catalog.ValidateLocation(cl.Location); err != nil {
		return err
	}
	if req.Identity != nil {
		t, ok := canonicalOf(req.Identity.Type, []string{"SystemAssigned", "UserAssigned", "None"})
		if !ok {
			return catalog.Invalid("InvalidParameter", "identity.type", "identity.type '%s' is invalid; use SystemAssigned, UserAssigned or None.", req.Identity.Type)
		}
		cl.IdentityType = t
	}
	if req.Sku != nil {
		if !strings.EqualFold(req.Sku.Name, clusterSKU) {
			return catalog.Invalid("InvalidParameter", "sku.name", "sku.name must be 'CapacityReservation'.")
		}
		if req.Sku.Capacity != 0 && !slices.Contains(clusterCapacities, req.Sku.Capacity) {
			return catalog.Invalid("InvalidParameter", "sku.capacity", "sku.capacity %d is invalid; use one of 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 25000, 50000.", req.Sku.Capacity)
		}
		if req.Sku.Capacity != 0 {
			cl.SKUCapacity = req.Sku.Capacity
		}
	}
	var kv *keyVaultPropsWire
	if p := req.Properties; p != nil {
		if p.BillingType != nil {
			t, ok := canonicalOf(*p.BillingType, []string{"Cluster", "Workspaces"})
			if !ok {
				return catalog.Invalid("InvalidParameter", "properties.billingType", "billingType must be Cluster or Workspaces.")
			}
			cl.BillingType = t
		}
		if p.IsAvailabilityZonesEnabled != nil && *p.IsAvailabilityZonesEnabled {
			return catalog.Invalid("InvalidParameter", "properties.isAvailabilityZonesEnabled", "Custos has no availability zones.")
		}
		if p.IsDoubleEncryptionEnabled != nil {
			if prev != nil && *p.IsDoubleEncryptionEnabled != prev.DoubleEncryption {
				return catalog.Invalid("InvalidParameter", "properties.isDoubleEncryptionEnabled",
					"isDoubleEncryptionEnabled is set when the cluster is created and cannot be changed.")
			}
			cl.DoubleEncryption = *p.IsDoubleEncryptionEnabled
		}
		kv = p.KeyVaultProperties
	}
	if prev != nil {
		cl.DoubleEncryption = prev.DoubleEncryption
		if kv == nil {
			cl.KeyVaultURI, cl.KeyName, cl.KeyVersion, cl.KeyRSASize = prev.KeyVaultURI, prev.KeyName, prev.KeyVersion, prev.KeyRSASize
			cl.KeyProvider, cl.KeyConfig, cl.KeySecretSealed = prev.KeyProvider, prev.KeyConfig, prev.KeySecretSealed
		}
	}
	if kv != nil && (kv.KeyVaultURI != "" || kv.KeyName != "") {
		spec := cmk.KeySpec{Provider: kv.CustosProvider, KeyVaultURI: kv.KeyVaultURI, KeyName: kv.KeyName, KeyVersion: kv.KeyVersion,
			KeyRSASize: kv.KeyRsaSize, Config: cmk.Config{Transit: kv.CustosTransit, Azure: kv.CustosAzure, PKCS11: kv.CustosPKCS11}}
		if kv.CustosSecret != nil {
			spec.Secret = crypt.Secret(*kv.CustosSecret)
		}
		var err error
		cl.KeyProvider, cl.KeyConfig, cl.KeySecretSealed, err = c.keys.Prepare(catalog.ClusterResourceID(sub, rg, name), spec, prev)
		spec.Secret.Wipe()
		if err != nil {
			return err
		}
		cl.KeyVaultURI, cl.KeyName, cl.KeyVersion, cl.KeyRSASize = kv.KeyVaultURI, kv.KeyName, kv.KeyVersion, kv.KeyRsaSize
	}
	out, created, err := c.a.cat.PutCluster(ctx, cl, precondition(r), actor(r),
		func(ctx context.Context, old, next *catalog.Cluster, linked []catalog.Workspace) error {
			return c.applyKey(ctx, old, next, linked)
		})
	if err != nil {
		return err
	}
	cw, err := c.wire(ctx, &out)
	if err != nil {
		return err
	}
	writePut(w, created, "", cw)
	return nil
}

// keyChanged reports whether next names another key, key version or
// provider configuration than old.
func keyChanged(old, next *catalog.Cluster) bool {
	return old == nil || old.KeyProvider != next.KeyProvider || old.KeyVaultURI != next.KeyVaultURI ||
		old.KeyName != next.KeyName || old.KeyVersion != next.KeyVersion || old.KeyConfig != next.KeyConfig ||
		string(old.KeySecretSealed) != string(next.KeySecretSealed)
}

// applyKey runs inside the catalog transaction of a cluster write: a new or
// changed key is probed, then every linked workspace is re-wrapped under it
// (a new keyVersion is a rotation; data is not rewritten). Any failure
// leaves the catalog unchanged; workspaces re-keyed before the failure
// stay readable, as the store keeps accepting the key they were wrapped
// with until the next link or restart re-applies the stored one.
func (c *clusterAPI) applyKey(ctx context.Context, old, next *catalog.Cluster, linked []catalog.Workspace) error {
	if !next.HasKey() {
		if len(linked) > 0 {
			return catalog.Invalid("InvalidParameter", "properties.keyVaultProperties",
				"The cluster has linked workspaces: its key cannot be removed.")
		}
		return nil
	}
	if !keyChanged(old, next) {
		return nil
	}
	p, err := c.keys.Provider(next)
	if err != nil {
		return err
	}
	if err := c.keys.Probe(ctx, p); err != nil {
		return err
	}
	for _, ws := range linked {
		if err := c.keys.Link(ctx, ws.CustomerID, next); err != nil {
			return err
		}
	}
	return nil
}

func (c *clusterAPI) delete(w http.ResponseWriter, r *http.Request) error {
	deleted, err := c.a.cat.DeleteCluster(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("clusterName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}

// Linked services: only "cluster" (writeAccessResourceId = a cluster).

type linkedServiceWire struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		WriteAccessResourceID string `json:"writeAccessResourceId"`
		ProvisioningState     string `json:"provisioningState"`
	} `json:"properties"`
}

type linkedServiceRequest struct {
	Properties *struct {
		WriteAccessResourceID *string `json:"writeAccessResourceId"`
		ResourceID            *string `json:"resourceId"`
		ProvisioningState     *string `json:"provisioningState"`
	} `json:"properties"`
	Tags map[string]string `json:"tags"`
	ID   *string           `json:"id"`
	Name *string           `json:"name"`
	Type *string           `json:"type"`
}

func toLinkedServiceWire(ws *catalog.Workspace, cl *catalog.Cluster) linkedServiceWire {
	var l linkedServiceWire
	l.ID, l.Name, l.Type = ws.ID()+"/linkedServices/"+linkedServiceCluster, linkedServiceCluster, catalog.TypeLinkedService
	l.Properties.WriteAccessResourceID, l.Properties.ProvisioningState = cl.ID(), "Succeeded"
	return l
}

func requireClusterService(r *http.Request) error {
	if !strings.EqualFold(r.PathValue("linkedServiceName"), linkedServiceCluster) {
		return catalog.Invalid("InvalidParameter", "name",
			"The linked service '%s' is not supported: Custos links workspaces to clusters only (linked service 'cluster').",
			truncateName(r.PathValue("linkedServiceName")))
	}
	return nil
}

func truncateName(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func (c *clusterAPI) listLinked(w http.ResponseWriter, r *http.Request) error {
	out := list[linkedServiceWire]{Value: []linkedServiceWire{}}
	cl, ws, err := c.a.cat.WorkspaceCluster(r.Context(), string(workspaceScope(r)))
	if err == nil {
		out.Value = append(out.Value, toLinkedServiceWire(&ws, &cl))
	} else if !errors.Is(err, catalog.ErrNotFound) || ws.CustomerID == "" {
		return err
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (c *clusterAPI) getLinked(w http.ResponseWriter, r *http.Request) error {
	if err := requireClusterService(r); err != nil {
		return err
	}
	cl, ws, err := c.a.cat.WorkspaceCluster(r.Context(), string(workspaceScope(r)))
	if err != nil {
		return err
	}
	writeGet(w, "", toLinkedServiceWire(&ws, &cl))
	return nil
}

// putLinked links the workspace to the cluster: its workspace key is
// re-wrapped under the cluster's key (with double encryption if the
// cluster has it); no data is rewritten. The cluster must be in the
// workspace's subscription.
func (c *clusterAPI) putLinked(w http.ResponseWriter, r *http.Request) error {
	if err := requireClusterService(r); err != nil {
		return err
	}
	var req linkedServiceRequest
	if err := api.DecodeJSON(r, &req, c.a.maxBody); err != nil {
		return err
	}
	if req.Properties == nil || req.Properties.WriteAccessResourceID == nil || *req.Properties.WriteAccessResourceID == "" {
		return catalog.Invalid("InvalidParameter", "properties.writeAccessResourceId",
			"properties.writeAccessResourceId (the cluster's resource ID) is required.")
	}
	clusterID := *req.Properties.WriteAccessResourceID
	if sub, _, _, ok := catalog.ParseClusterResourceID(clusterID); ok && !strings.EqualFold(sub, r.PathValue("subscriptionId")) {
		return catalog.Invalid("InvalidParameter", "properties.writeAccessResourceId",
			"The cluster must be in the workspace's subscription.")
	}
	var ws catalog.Workspace
	cl, created, err := c.a.cat.LinkWorkspace(r.Context(), string(workspaceScope(r)), clusterID, actor(r),
		func(ctx context.Context, cl catalog.Cluster, w catalog.Workspace, _ string) error {
			ws = w
			return c.keys.Link(ctx, w.CustomerID, &cl)
		})
	if err != nil {
		return err
	}
	writePut(w, created, "", toLinkedServiceWire(&ws, &cl))
	return nil
}

// deleteLinked unlinks the workspace: its key goes back under the platform
// key (the customer key must still be usable; double encryption stays).
func (c *clusterAPI) deleteLinked(w http.ResponseWriter, r *http.Request) error {
	if err := requireClusterService(r); err != nil {
		return err
	}
	var out *linkedServiceWire
	deleted, err := c.a.cat.UnlinkWorkspace(r.Context(), string(workspaceScope(r)),
		func(ctx context.Context, cl catalog.Cluster, ws catalog.Workspace) error {
			l := toLinkedServiceWire(&ws, &cl)
			out = &l
			return c.keys.Unlink(ctx, ws.CustomerID)
		})
	if err != nil {
		return err
	}
	if !deleted {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}
