package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// TypeCluster is the ARM type of a Log Analytics dedicated cluster.
const TypeCluster = "Microsoft.OperationalInsights/clusters"

// TypeLinkedService is the ARM type of a workspace's linked service.
const TypeLinkedService = "Microsoft.OperationalInsights/workspaces/linkedServices"

// ClusterResourceID returns /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/clusters/{name}.
func ClusterResourceID(sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + TypeCluster + "/" + name
}

// ParseClusterResourceID splits a cluster resource ID.
func ParseClusterResourceID(id string) (sub, rg, name string, ok bool) {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	if len(p) != 9 || p[0] != "" ||
		!strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.OperationalInsights") ||
		!strings.EqualFold(p[7], "clusters") || p[2] == "" || p[4] == "" || p[8] == "" {
		return "", "", "", false
	}
	return p[2], p[4], p[8], true
}

// Cluster is a Microsoft.OperationalInsights/clusters resource: the
// customer-managed key (and double encryption) that its linked workspaces
// are encrypted under. The catalog stores the key's description; package
// cmk turns it into a crypt.KeyProvider.
type Cluster struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Tags           map[string]string

	ClusterID    string // GUID assigned at creation (properties.clusterId)
	IdentityType string // "SystemAssigned", "UserAssigned" or "None"
	SKUName      string // "CapacityReservation"
	SKUCapacity  int
	BillingType  string // "Cluster" or "Workspaces"

	// keyVaultProperties, as in Azure.
	KeyVaultURI string
	KeyName     string
	KeyVersion  string
	KeyRSASize  int
	// KeyProvider names the provider the key lives in ("" when no key is
	// set yet, "azureKeyVault", "transit", "file", "pkcs11"); KeyConfig is
	// its non-secret configuration (JSON, owned by package cmk) and
	// KeySecretSealed the provider credential sealed with the platform key.
	KeyProvider     string
	KeyConfig       string
	KeySecretSealed []byte

	DoubleEncryption bool
	ETag             string
	Audit            Audit
}

// ID returns the cluster's resource ID.
func (c *Cluster) ID() string { return ClusterResourceID(c.SubscriptionID, c.ResourceGroup, c.Name) }

// HasKey reports whether a customer-managed key is configured.
func (c *Cluster) HasKey() bool { return c.KeyProvider != "" }

// ClusterLink is a workspace linked to a cluster.
type ClusterLink struct {
	Workspace Workspace
	ClusterID string // the cluster's resource ID
	LinkedAt  time.Time
	LinkedBy  string
}

// Cluster names: 4 to 63 letters, digits and hyphens, starting with a
// letter or digit and not ending with a hyphen (Azure's rule).
var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$`)

// ValidateClusterName checks a cluster name.
func ValidateClusterName(name string) error {
	if !clusterNameRE.MatchString(name) {
		return Invalid("InvalidResourceName", "name",
			"The cluster name '%s' is invalid: use 4 to 63 letters, digits and hyphens, starting and ending with a letter or digit.",
			truncate(name, 100))
	}
	return nil
}

const clusterColumns = `s.subscription_id, g.name, c.name, c.location, c.tags, c.cluster_id, c.identity_type, c.sku_name,
	c.sku_capacity, c.billing_type, c.key_vault_uri, c.key_name, c.key_version, c.key_rsa_size, c.key_provider, c.key_config,
	c.key_secret_sealed, c.double_encryption, c.etag, c.created_at, c.created_by, c.created_by_type, c.modified_at,
	c.modified_by, c.modified_by_type`

const clusterFrom = ` FROM clusters c JOIN resource_groups g ON g.rg_key = c.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanCluster(sc interface{ Scan(...any) error }) (Cluster, error) {
	var c Cluster
	var tags, created, modified string
	var double int
	err := sc.Scan(&c.SubscriptionID, &c.ResourceGroup, &c.Name, &c.Location, &tags, &c.ClusterID, &c.IdentityType,
		&c.SKUName, &c.SKUCapacity, &c.BillingType, &c.KeyVaultURI, &c.KeyName, &c.KeyVersion, &c.KeyRSASize,
		&c.KeyProvider, &c.KeyConfig, &c.KeySecretSealed, &double, &c.ETag, &created, &c.Audit.CreatedBy,
		&c.Audit.CreatedByType, &modified, &c.Audit.ModifiedBy, &c.Audit.ModifiedByType)
	if err != nil {
		return Cluster{}, err
	}
	c.DoubleEncryption = double != 0
	if c.Tags, err = unmarshalTags(tags); err != nil {
		return Cluster{}, err
	}
	if c.Audit.CreatedAt, err = parseTime(created); err != nil {
		return Cluster{}, err
	}
	if c.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return Cluster{}, err
	}
	return c, nil
}

func listClusters(ctx context.Context, r run, where string, args ...any) ([]Cluster, error) {
	q := `SELECT ` + clusterColumns + clusterFrom
	if where != "" {
		q += `WHERE ` + where
	}
	return queryAll(ctx, r, "list clusters", scanCluster, q+` ORDER BY c.cluster_key`, args...)
}

func getClusterByKey(ctx context.Context, r run, clusterKey, rg, name string) (Cluster, error) {
	c, err := scanCluster(r.row(ctx, `SELECT `+clusterColumns+clusterFrom+`WHERE c.cluster_key = ?`, clusterKey))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, errResourceNotFound(TypeCluster+"/"+name, rg)
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("get cluster: %w", err)
	}
	return c, nil
}

func getCluster(ctx context.Context, r run, sub, rg, name string) (Cluster, error) {
	return getClusterByKey(ctx, r, key(ClusterResourceID(sub, rg, name)), rg, name)
}

// PutCluster creates or replaces a cluster. A new cluster gets a fresh
// clusterId; an update keeps it, the name's casing and the creation data.
// check, when non-nil, runs inside the transaction with the stored cluster
// (nil if new) and the one to be written, and may refuse the change (the
// caller re-keys linked workspaces there, so a refused key leaves the
// catalog unchanged). It reports whether the cluster was created.
func (c *DB) PutCluster(ctx context.Context, cl Cluster, pre Precondition, by Actor,
	check func(ctx context.Context, old *Cluster, next *Cluster, linked []Workspace) error) (Cluster, bool, error) {
	if err := ValidateClusterName(cl.Name); err != nil {
		return Cluster{}, false, err
	}
	if err := ValidateTags(cl.Tags); err != nil {
		return Cluster{}, false, err
	}
	tags, err := marshalTags(cl.Tags)
	if err != nil {
		return Cluster{}, false, err
	}
	etag, err := c.newETag()
	if err != nil {
		return Cluster{}, false, err
	}
	if cl.KeySecretSealed == nil {
		cl.KeySecretSealed = []byte{}
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		g, err := requireResourceGroup(ctx, r, cl.SubscriptionID, cl.ResourceGroup)
		if err != nil {
			return err
		}
		cl.SubscriptionID, cl.ResourceGroup = g.SubscriptionID, g.Name
		old, err := getCluster(ctx, r, cl.SubscriptionID, cl.ResourceGroup, cl.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		cl.ETag = etag
		cl.Audit.ModifiedAt, cl.Audit.ModifiedBy, cl.Audit.ModifiedByType = now, by.ID, by.Type
		var linked []Workspace
		if exists {
			cl.Name, cl.ClusterID = old.Name, old.ClusterID
			cl.Audit.CreatedAt, cl.Audit.CreatedBy, cl.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
			if linked, err = linkedWorkspaces(ctx, r, key(old.ID())); err != nil {
				return err
			}
		} else {
			created = true
			if cl.ClusterID, err = c.newGUID(); err != nil {
				return err
			}
			cl.Audit.CreatedAt, cl.Audit.CreatedBy, cl.Audit.CreatedByType = now, by.ID, by.Type
		}
		if check != nil {
			var op *Cluster
			if exists {
				op = &old
			}
			if err := check(ctx, op, &cl, linked); err != nil {
				return err
			}
		}
		if exists {
			_, err = r.exec(ctx, `UPDATE clusters SET location = ?, tags = ?, identity_type = ?, sku_name = ?, sku_capacity = ?,
				billing_type = ?, key_vault_uri = ?, key_name = ?, key_version = ?, key_rsa_size = ?, key_provider = ?,
				key_config = ?, key_secret_sealed = ?, double_encryption = ?, etag = ?, modified_at = ?, modified_by = ?,
				modified_by_type = ? WHERE cluster_key = ?`,
				cl.Location, tags, cl.IdentityType, cl.SKUName, cl.SKUCapacity, cl.BillingType, cl.KeyVaultURI, cl.KeyName,
				cl.KeyVersion, cl.KeyRSASize, cl.KeyProvider, cl.KeyConfig, cl.KeySecretSealed, boolInt(cl.DoubleEncryption),
				cl.ETag, fmtTime(now), by.ID, by.Type, key(cl.ID()))
		} else {
			_, err = r.exec(ctx, `INSERT INTO clusters (cluster_key, rg_key, sub_key, name, location, tags, cluster_id,
				identity_type, sku_name, sku_capacity, billing_type, key_vault_uri, key_name, key_version, key_rsa_size,
				key_provider, key_config, key_secret_sealed, double_encryption, etag, created_at, created_by, created_by_type,
				modified_at, modified_by, modified_by_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(cl.ID()), key(g.ID()), key(cl.SubscriptionID), cl.Name, cl.Location, tags, cl.ClusterID, cl.IdentityType,
				cl.SKUName, cl.SKUCapacity, cl.BillingType, cl.KeyVaultURI, cl.KeyName, cl.KeyVersion, cl.KeyRSASize,
				cl.KeyProvider, cl.KeyConfig, cl.KeySecretSealed, boolInt(cl.DoubleEncryption), cl.ETag,
				fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put cluster: %w", err)
		}
		return nil
	})
	if err != nil {
		return Cluster{}, false, err
	}
	return cl, created, nil
}

// Cluster returns a cluster by subscription, resource group and name.
func (c *DB) Cluster(ctx context.Context, sub, rg, name string) (Cluster, error) {
	if _, err := requireResourceGroup(ctx, c.r(), sub, rg); err != nil {
		return Cluster{}, err
	}
	return getCluster(ctx, c.r(), sub, rg, name)
}

// ClusterByResourceID returns a cluster by its resource ID.
func (c *DB) ClusterByResourceID(ctx context.Context, id string) (Cluster, error) {
	sub, rg, name, ok := ParseClusterResourceID(id)
	if !ok {
		return Cluster{}, Invalid("InvalidParameter", "properties.writeAccessResourceId",
			"'%s' is not a cluster resource ID (/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/clusters/{name}).",
			truncate(id, 300))
	}
	return c.Cluster(ctx, sub, rg, name)
}

// Clusters lists the clusters of a subscription, or of one resource group
// when rg is not "".
func (c *DB) Clusters(ctx context.Context, sub, rg string) ([]Cluster, error) {
	if rg != "" {
		if _, err := requireResourceGroup(ctx, c.r(), sub, rg); err != nil {
			return nil, err
		}
		return listClusters(ctx, c.r(), `c.rg_key = ?`, key(ResourceGroupResourceID(sub, rg)))
	}
	// Subscriptions are keyed by their bare ID (as resources.go does).
	if _, err := getSubscription(ctx, c.r(), sub); err != nil {
		return nil, err
	}
	return listClusters(ctx, c.r(), `c.sub_key = ?`, key(sub))
}

// DeleteCluster removes a cluster; it reports whether it existed. A cluster
// with linked workspaces is not deleted (409): unlink them first, so that no
// workspace is left encrypted under a key nobody knows about.
func (c *DB) DeleteCluster(ctx context.Context, sub, rg, name string, pre Precondition) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
			return err
		}
		old, err := getCluster(ctx, r, sub, rg, name)
		if errors.Is(err, ErrNotFound) {
			return pre.check(false, "")
		}
		if err != nil {
			return err
		}
		if err := pre.check(true, old.ETag); err != nil {
			return err
		}
		linked, err := linkedWorkspaces(ctx, r, key(old.ID()))
		if err != nil {
			return err
		}
		if len(linked) > 0 {
			return conflict("ClusterHasLinkedWorkspaces",
				"The cluster '%s' has %d linked workspace(s). Unlink them (DELETE .../linkedServices/cluster) before deleting the cluster.",
				old.Name, len(linked))
		}
		if _, err := r.exec(ctx, `DELETE FROM clusters WHERE cluster_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete cluster: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}

func linkedWorkspaces(ctx context.Context, r run, clusterKey string) ([]Workspace, error) {
	return listWorkspaces(ctx, r, `w.ws_key IN (SELECT ws_key FROM cluster_links WHERE cluster_key = ?)`, clusterKey)
}

// ClusterWorkspaces lists the workspaces linked to a cluster.
func (c *DB) ClusterWorkspaces(ctx context.Context, clusterID string) ([]Workspace, error) {
	return linkedWorkspaces(ctx, c.r(), key(clusterID))
}

// LinkWorkspace links a workspace to a cluster (replacing a link to another
// cluster). apply, when non-nil, runs inside the transaction with the
// cluster, the workspace and the cluster it was linked to before ("" for
// none); it re-keys the workspace, and its error aborts the link. It
// reports whether the link is new.
func (c *DB) LinkWorkspace(ctx context.Context, workspaceID, clusterID string, by Actor,
	apply func(ctx context.Context, cl Cluster, ws Workspace, previous string) error) (Cluster, bool, error) {
	var cl Cluster
	created := false
	err := c.inTx(ctx, func(r run) error {
		ws, err := workspaceByID(ctx, r, workspaceID)
		if err != nil {
			return err
		}
		sub, rg, name, ok := ParseClusterResourceID(clusterID)
		if !ok {
			return Invalid("InvalidParameter", "properties.writeAccessResourceId",
				"'%s' is not a cluster resource ID (/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/clusters/{name}).",
				truncate(clusterID, 300))
		}
		if cl, err = getCluster(ctx, r, sub, rg, name); err != nil {
			if errors.Is(err, ErrNotFound) {
				return Invalid("InvalidParameter", "properties.writeAccessResourceId", "The cluster '%s' does not exist.", truncate(clusterID, 300))
			}
			return err
		}
		if !cl.HasKey() {
			return Invalid("InvalidParameter", "properties.writeAccessResourceId",
				"The cluster '%s' has no customer-managed key yet: set properties.keyVaultProperties on the cluster before linking workspaces.", cl.Name)
		}
		var previous string
		err = r.row(ctx, `SELECT cluster_key FROM cluster_links WHERE ws_key = ?`, key(ws.ID())).Scan(&previous)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("link workspace: %w", err)
		}
		created = previous == ""
		if apply != nil {
			if err := apply(ctx, cl, ws, previous); err != nil {
				return err
			}
		}
		_, err = r.exec(ctx, `INSERT INTO cluster_links (ws_key, cluster_key, linked_at, linked_by) VALUES (?, ?, ?, ?)
			ON CONFLICT (ws_key) DO UPDATE SET cluster_key = excluded.cluster_key, linked_at = excluded.linked_at,
			linked_by = excluded.linked_by`, key(ws.ID()), key(cl.ID()), fmtTime(c.nowUTC()), by.ID)
		if err != nil {
			return fmt.Errorf("link workspace: %w", err)
		}
		return nil
	})
	if err != nil {
		return Cluster{}, false, err
	}
	return cl, created, nil
}

// WorkspaceCluster returns the cluster a workspace is linked to; ErrNotFound
// (a 404 *Error) when it is not linked.
func (c *DB) WorkspaceCluster(ctx context.Context, workspaceID string) (Cluster, Workspace, error) {
	ws, err := workspaceByID(ctx, c.r(), workspaceID)
	if err != nil {
		return Cluster{}, Workspace{}, err
	}
	var ck string
	err = c.r().row(ctx, `SELECT cluster_key FROM cluster_links WHERE ws_key = ?`, key(ws.ID())).Scan(&ck)
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, ws, notFound("ResourceNotFound", "The workspace '%s' is not linked to a cluster.", ws.Name)
	}
	if err != nil {
		return Cluster{}, ws, fmt.Errorf("workspace cluster: %w", err)
	}
	cl, err := getClusterByKey(ctx, c.r(), ck, "", ck)
	return cl, ws, err
}

// UnlinkWorkspace removes a workspace's cluster link. apply, when non-nil,
// runs inside the transaction with the cluster and the workspace (it moves
// the workspace back to the platform key); its error aborts the unlink. It
// reports whether a link existed.
func (c *DB) UnlinkWorkspace(ctx context.Context, workspaceID string,
	apply func(ctx context.Context, cl Cluster, ws Workspace) error) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		ws, err := workspaceByID(ctx, r, workspaceID)
		if err != nil {
			return err
		}
		var ck string
		err = r.row(ctx, `SELECT cluster_key FROM cluster_links WHERE ws_key = ?`, key(ws.ID())).Scan(&ck)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unlink workspace: %w", err)
		}
		cl, err := getClusterByKey(ctx, r, ck, "", ck)
		if err != nil {
			return err
		}
		if apply != nil {
			if err := apply(ctx, cl, ws); err != nil {
				return err
			}
		}
		if _, err := r.exec(ctx, `DELETE FROM cluster_links WHERE ws_key = ?`, key(ws.ID())); err != nil {
			return fmt.Errorf("unlink workspace: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// AllClusterLinks returns every workspace linked to a cluster, with the
// cluster; the server re-attaches their key providers at start.
func (c *DB) AllClusterLinks(ctx context.Context) ([]ClusterLink, []Cluster, error) {
	clusters, err := listClusters(ctx, c.r(), `c.cluster_key IN (SELECT cluster_key FROM cluster_links)`)
	if err != nil {
		return nil, nil, err
	}
	var links []ClusterLink
	for i := range clusters {
		wss, err := linkedWorkspaces(ctx, c.r(), key(clusters[i].ID()))
		if err != nil {
			return nil, nil, err
		}
		for _, w := range wss {
			links = append(links, ClusterLink{Workspace: w, ClusterID: clusters[i].ID()})
		}
	}
	return links, clusters, nil
}
