package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"custos/internal/identity"
)

// TypeConnectedCluster is the ARM type of an enrolled Kubernetes cluster.
const TypeConnectedCluster = "Microsoft.Kubernetes/connectedClusters"

// ConnectedClusterResourceID returns the ARM ID of a connected cluster.
func ConnectedClusterResourceID(sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + TypeConnectedCluster + "/" + name
}

var connectedClusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$`)

// ValidConnectedClusterName reports whether name is a valid cluster name: 1
// to 63 letters, digits, '-', '_' and '.', starting with a letter or digit
// and not ending with '.'.
func ValidConnectedClusterName(name string) bool {
	return connectedClusterNameRE.MatchString(name) && !strings.HasSuffix(name, ".")
}

// ConnectedCluster is a Microsoft.Kubernetes/connectedClusters resource: a
// cluster enrolled with a one-time token, whose custos-agent pods share a
// system-assigned managed identity bound to a key generated at enrollment.
type ConnectedCluster struct {
	SubscriptionID    string
	ResourceGroup     string
	Name              string
	Location          string
	Tags              map[string]string
	TenantID          string
	PrincipalID       string
	ClientID          string
	IdentityEnabled   bool
	Distribution      string
	KubernetesVersion string
	AgentVersion      string
	ETag              string
	Audit             Audit
}

// ID returns the cluster's ARM resource ID.
func (cl *ConnectedCluster) ID() string {
	return ConnectedClusterResourceID(cl.SubscriptionID, cl.ResourceGroup, cl.Name)
}

// ClusterEnrollment is what EnrollCluster needs: the presented token's hash,
// the cluster's name and facts, the new identity's IDs and its key.
type ClusterEnrollment struct {
	TokenHash         []byte
	Name              string
	Distribution      string
	KubernetesVersion string
	AgentVersion      string
	ObjectID, AppID   string
	Key               identity.KeyCredential
}

// CreateClusterEnrollmentToken stores the hash of a new one-time cluster
// enrollment token for resource group rg, valid until expires. Cluster and
// machine tokens are stored apart: neither enrolls the other kind.
func (c *DB) CreateClusterEnrollmentToken(ctx context.Context, sub, rg string, hash []byte, expires time.Time, by Actor) (EnrollmentToken, error) {
	return clusterEnrollment.createToken(ctx, c, sub, rg, hash, expires, by)
}

// EnrollCluster consumes a cluster enrollment token and, in the same
// transaction, creates the cluster's managed identity with its key
// credential, the connectedClusters resource, and a Reader role assignment
// of the identity on its own cluster (so that it may read its configuration).
// An unknown, used or expired token is identity.ErrEnrollmentTokenInvalid; an
// existing cluster of that name is identity.ErrConflict (the token is kept).
func (c *DB) EnrollCluster(ctx context.Context, e ClusterEnrollment) (ConnectedCluster, error) {
	if !ValidConnectedClusterName(e.Name) || e.ObjectID == "" || e.AppID == "" || len(e.TokenHash) == 0 {
		return ConnectedCluster{}, fmt.Errorf("%w: enrollment needs a valid name, identity IDs and a token hash", identity.ErrInvalidArgument)
	}
	raName, err := c.newGUID()
	if err != nil {
		return ConnectedCluster{}, err
	}
	etag, err := c.newETag()
	if err != nil {
		return ConnectedCluster{}, err
	}
	var out ConnectedCluster
	err = c.inTx(ctx, func(r run) error {
		now := c.nowUTC()
		en := clusterEnrollment.withToken(e.TokenHash)
		rgKey, g, tenant, err := en.begin(ctx, r, now)
		if err != nil {
			return err
		}
		cl := ConnectedCluster{SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, Name: e.Name, Location: g.Location,
			TenantID: strings.ToLower(tenant), PrincipalID: strings.ToLower(e.ObjectID), ClientID: strings.ToLower(e.AppID)}
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM connected_clusters WHERE cluster_key = ?`, key(cl.ID())).Scan(&n); err != nil {
			return fmt.Errorf("enroll cluster: %w", err)
		}
		if n > 0 {
			return conflictIdentity("The connected cluster '%s' already exists.", cl.ID())
		}
		if err := en.createIdentity(ctx, r, c, cl.TenantID, cl.PrincipalID, cl.ClientID, cl.Name, cl.ID(), e.Key); err != nil {
			return err
		}
		by := Actor{ID: cl.PrincipalID, Type: "ManagedIdentity"}
		_, err = r.exec(ctx, `INSERT INTO connected_clusters (cluster_key, rg_key, sub_key, name, location, tags, tenant_id, principal_id,
			client_id, distribution, kubernetes_version, agent_version, etag, created_at, created_by, created_by_type,
			modified_at, modified_by, modified_by_type) VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key(cl.ID()), rgKey, key(cl.SubscriptionID), cl.Name, cl.Location, cl.TenantID, cl.PrincipalID, cl.ClientID,
			e.Distribution, e.KubernetesVersion, e.AgentVersion, etag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		if err != nil {
			return fmt.Errorf("enroll cluster: %w", err)
		}
		if err := en.finish(ctx, r, now, cl.ID(), raName, cl.PrincipalID); err != nil {
			return err
		}
		out, err = getConnectedCluster(ctx, r, cl.SubscriptionID, cl.ResourceGroup, cl.Name)
		return err
	})
	if err != nil {
		return ConnectedCluster{}, err
	}
	return out, nil
}

const connectedClusterColumns = `s.subscription_id, g.name, k.name, k.location, k.tags, k.tenant_id, k.principal_id, k.client_id,
	COALESCE(p.enabled, 0), k.distribution, k.kubernetes_version, k.agent_version, k.etag,
	k.created_at, k.created_by, k.created_by_type, k.modified_at, k.modified_by, k.modified_by_type`

const connectedClusterFrom = ` FROM connected_clusters k JOIN resource_groups g ON g.rg_key = k.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key
	LEFT JOIN service_principals p ON p.object_id = k.principal_id `

func scanConnectedCluster(sc interface{ Scan(...any) error }) (ConnectedCluster, error) {
	var cl ConnectedCluster
	var tags, created, modified string
	var enabled int
	if err := sc.Scan(&cl.SubscriptionID, &cl.ResourceGroup, &cl.Name, &cl.Location, &tags, &cl.TenantID, &cl.PrincipalID, &cl.ClientID,
		&enabled, &cl.Distribution, &cl.KubernetesVersion, &cl.AgentVersion, &cl.ETag,
		&created, &cl.Audit.CreatedBy, &cl.Audit.CreatedByType, &modified, &cl.Audit.ModifiedBy, &cl.Audit.ModifiedByType); err != nil {
		return ConnectedCluster{}, err
	}
	cl.IdentityEnabled = enabled != 0
	var err error
	if cl.Tags, err = unmarshalTags(tags); err != nil {
		return ConnectedCluster{}, err
	}
	if cl.Audit.CreatedAt, err = parseTime(created); err != nil {
		return ConnectedCluster{}, err
	}
	if cl.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return ConnectedCluster{}, err
	}
	return cl, nil
}

func getConnectedCluster(ctx context.Context, r run, sub, rg, name string) (ConnectedCluster, error) {
	cl, err := scanConnectedCluster(r.row(ctx, `SELECT `+connectedClusterColumns+connectedClusterFrom+`WHERE k.cluster_key = ?`,
		key(ConnectedClusterResourceID(sub, rg, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return ConnectedCluster{}, errResourceNotFound(TypeConnectedCluster+"/"+name, rg)
	}
	if err != nil {
		return ConnectedCluster{}, fmt.Errorf("get connected cluster: %w", err)
	}
	return cl, nil
}

// ConnectedCluster returns a connected cluster.
func (c *DB) ConnectedCluster(ctx context.Context, sub, rg, name string) (ConnectedCluster, error) {
	r := c.r()
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return ConnectedCluster{}, err
	}
	return getConnectedCluster(ctx, r, sub, rg, name)
}

// ConnectedClusters lists the connected clusters of a subscription, or of
// one of its resource groups when rg is not empty.
func (c *DB) ConnectedClusters(ctx context.Context, sub, rg string) ([]ConnectedCluster, error) {
	r := c.r()
	where, arg, err := subOrRGFilter(ctx, r, "k", sub, rg)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, r, "list connected clusters", scanConnectedCluster,
		`SELECT `+connectedClusterColumns+connectedClusterFrom+`WHERE `+where+` ORDER BY k.cluster_key`, arg)
}

// SetConnectedClusterIdentityEnabled enables or disables the cluster's
// managed identity (a disabled identity gets no tokens and its tokens stop
// working).
func (c *DB) SetConnectedClusterIdentityEnabled(ctx context.Context, sub, rg, name string, enabled bool, by Actor) (ConnectedCluster, error) {
	etag, err := c.newETag()
	if err != nil {
		return ConnectedCluster{}, err
	}
	var out ConnectedCluster
	err = c.inTx(ctx, func(r run) error {
		cl, err := getConnectedCluster(ctx, r, sub, rg, name)
		if err != nil {
			return err
		}
		if _, err := r.exec(ctx, `UPDATE service_principals SET enabled = ? WHERE object_id = ?`, boolInt(enabled), cl.PrincipalID); err != nil {
			return fmt.Errorf("update connected cluster: %w", err)
		}
		if _, err := r.exec(ctx, `UPDATE connected_clusters SET etag = ?, modified_at = ?, modified_by = ?, modified_by_type = ? WHERE cluster_key = ?`,
			etag, fmtTime(c.nowUTC()), by.ID, by.Type, key(cl.ID())); err != nil {
			return fmt.Errorf("update connected cluster: %w", err)
		}
		out, err = getConnectedCluster(ctx, r, sub, rg, name)
		return err
	})
	return out, err
}

// DeleteConnectedCluster deletes a cluster with its associations and its
// managed identity (credentials and role assignments go with it). It
// reports false when there was nothing to delete.
func (c *DB) DeleteConnectedCluster(ctx context.Context, sub, rg, name string, pre Precondition) (bool, error) {
	return c.deleteGuarded(ctx, pre, func(r run) (string, error) {
		cl, err := getConnectedCluster(ctx, r, sub, rg, name)
		return cl.ETag, err
	}, func(r run) error {
		if _, err := r.exec(ctx, `DELETE FROM connected_clusters WHERE cluster_key = ?`, key(ConnectedClusterResourceID(sub, rg, name))); err != nil {
			return fmt.Errorf("delete connected cluster: %w", err)
		}
		return nil
	})
}

// ClusterDCRAssociation links a data collection rule to a connected cluster
// ({clusterId}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{name}).
type ClusterDCRAssociation struct {
	ClusterID            string
	Name                 string
	DataCollectionRuleID string
	Description          string
	ETag                 string
	Audit                Audit
}

// ID returns the association's ARM ID.
func (a *ClusterDCRAssociation) ID() string {
	return a.ClusterID + "/providers/" + TypeDCRAssociation + "/" + a.Name
}

// PutClusterDCRAssociation creates or replaces an association of a rule
// with a cluster; the rule must exist. It reports whether it was created.
func (c *DB) PutClusterDCRAssociation(ctx context.Context, sub, rg, cluster string, a ClusterDCRAssociation, by Actor) (ClusterDCRAssociation, bool, error) {
	if err := ValidateAssociationName(a.Name); err != nil {
		return ClusterDCRAssociation{}, false, err
	}
	dsub, drg, dname, ok := ParseDataCollectionRuleResourceID(a.DataCollectionRuleID)
	if !ok {
		return ClusterDCRAssociation{}, false, Invalid("InvalidParameter", "properties.dataCollectionRuleId",
			"The property 'dataCollectionRuleId' must be a data collection rule resource ID.")
	}
	etag, err := c.newETag()
	if err != nil {
		return ClusterDCRAssociation{}, false, err
	}
	created := false
	var out ClusterDCRAssociation
	err = c.inTx(ctx, func(r run) error {
		cl, err := getConnectedCluster(ctx, r, sub, rg, cluster)
		if err != nil {
			return err
		}
		d, err := getDataCollectionRule(ctx, r, dsub, drg, dname)
		if err != nil {
			return err
		}
		a.ClusterID = cl.ID()
		a.DataCollectionRuleID = d.ID()
		now := fmtTime(c.nowUTC())
		res, err := r.exec(ctx, `UPDATE cluster_dcr_associations SET dcr_id = ?, description = ?, etag = ?, modified_at = ?, modified_by = ?,
			modified_by_type = ? WHERE assoc_key = ?`, a.DataCollectionRuleID, a.Description, etag, now, by.ID, by.Type, key(a.ID()))
		if err != nil {
			return fmt.Errorf("put cluster association: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			created = true
			if _, err := r.exec(ctx, `INSERT INTO cluster_dcr_associations (assoc_key, cluster_key, name, dcr_id, description, etag,
				created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(a.ID()), key(cl.ID()), a.Name, a.DataCollectionRuleID, a.Description, etag, now, by.ID, by.Type, now, by.ID, by.Type); err != nil {
				return fmt.Errorf("put cluster association: %w", err)
			}
		}
		list, err := listClusterDCRAssociations(ctx, r, key(cl.ID()))
		if err != nil {
			return err
		}
		for _, x := range list {
			if strings.EqualFold(x.Name, a.Name) {
				out = x
			}
		}
		return nil
	})
	return out, created, err
}

func listClusterDCRAssociations(ctx context.Context, r run, clusterKey string) ([]ClusterDCRAssociation, error) {
	return queryAll(ctx, r, "list cluster associations", func(sc interface{ Scan(...any) error }) (ClusterDCRAssociation, error) {
		var a ClusterDCRAssociation
		var created, modified string
		if err := sc.Scan(&a.ClusterID, &a.Name, &a.DataCollectionRuleID, &a.Description, &a.ETag, &created, &a.Audit.CreatedBy,
			&a.Audit.CreatedByType, &modified, &a.Audit.ModifiedBy, &a.Audit.ModifiedByType); err != nil {
			return a, err
		}
		var err error
		if a.Audit.CreatedAt, err = parseTime(created); err != nil {
			return a, err
		}
		a.Audit.ModifiedAt, err = parseTime(modified)
		return a, err
	}, `SELECT (SELECT '/subscriptions/' || s.subscription_id || '/resourceGroups/' || g.name || '/providers/`+TypeConnectedCluster+`/' || k.name
			FROM connected_clusters k JOIN resource_groups g ON g.rg_key = k.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key
			WHERE k.cluster_key = a.cluster_key),
		a.name, a.dcr_id, a.description, a.etag, a.created_at, a.created_by, a.created_by_type, a.modified_at, a.modified_by, a.modified_by_type
		FROM cluster_dcr_associations a WHERE a.cluster_key = ? ORDER BY a.assoc_key`, clusterKey)
}

// ClusterDCRAssociations lists a cluster's associations.
func (c *DB) ClusterDCRAssociations(ctx context.Context, sub, rg, cluster string) ([]ClusterDCRAssociation, error) {
	r := c.r()
	cl, err := getConnectedCluster(ctx, r, sub, rg, cluster)
	if err != nil {
		return nil, err
	}
	return listClusterDCRAssociations(ctx, r, key(cl.ID()))
}

// DeleteClusterDCRAssociation deletes an association; false when absent.
func (c *DB) DeleteClusterDCRAssociation(ctx context.Context, sub, rg, cluster, name string) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		cl, err := getConnectedCluster(ctx, r, sub, rg, cluster)
		if err != nil {
			return err
		}
		res, err := r.exec(ctx, `DELETE FROM cluster_dcr_associations WHERE assoc_key = ?`,
			key(cl.ID()+"/providers/"+TypeDCRAssociation+"/"+name))
		if err != nil {
			return fmt.Errorf("delete cluster association: %w", err)
		}
		n, _ := res.RowsAffected()
		deleted = n > 0
		return nil
	})
	return deleted, err
}

// ClusterConfiguration is a cluster with the rules associated with it.
type ClusterConfiguration struct {
	Cluster             ConnectedCluster
	DataCollectionRules []DataCollectionRule
}

// ClusterConfigurationFor returns a cluster and the rules its associations
// name (rules deleted since are left out).
func (c *DB) ClusterConfigurationFor(ctx context.Context, sub, rg, name string) (ClusterConfiguration, error) {
	r := c.r()
	cl, err := getConnectedCluster(ctx, r, sub, rg, name)
	if err != nil {
		return ClusterConfiguration{}, err
	}
	as, err := listClusterDCRAssociations(ctx, r, key(cl.ID()))
	if err != nil {
		return ClusterConfiguration{}, err
	}
	ids := make([]string, len(as))
	for i := range as {
		ids[i] = as[i].DataCollectionRuleID
	}
	rules, err := associatedRules(ctx, r, ids)
	if err != nil {
		return ClusterConfiguration{}, err
	}
	return ClusterConfiguration{Cluster: cl, DataCollectionRules: rules}, nil
}

// Container insights' inventory and event tables, and the API server audit
// table, are standard tables of every new workspace (Azure's columns from
// its table reference; KubeAudit has the columns of Azure's ArcK8sAudit and
// AKSAudit tables). They are appended here, with the cluster code, rather
// than in standard.go.
func init() {
	standardTables = append(standardTables, kubeStandardTables...)
}

var kubeStandardTables = []standardTable{
	{"KubePodInventory", "Kubernetes pods and their containers, from the API server (Container insights).", []Column{
		col("TimeGenerated", tDT, "Date and time the inventory was taken."),
		col("ClusterId", tS, "ID of the Kubernetes cluster."),
		col("ClusterName", tS, "Name of the Kubernetes cluster."),
		col("Computer", tS, "Node the pod is scheduled on; empty for unscheduled pods."),
		col("ContainerCreationTimeStamp", tDT, "Container creation time."),
		col("ContainerID", tS, "Container ID."),
		col("ContainerLastStatus", tS, "Last observed previous state of the container."),
		col("ContainerName", tS, "Container name, as poduid/containername."),
		col("ContainerRestartCount", tI, "Restart count of the container."),
		col("ContainerStartTime", tDT, "Time the container started."),
		col("ContainerStatus", tS, "Last observed current state of the container."),
		col("ContainerStatusReason", tS, "Reason for the container's state, if any."),
		col("ControllerKind", tS, "Kind of the pod's controller, e.g. ReplicaSet."),
		col("ControllerName", tS, "Name of the pod's controller."),
		col("InstanceName", tS, "Not used."),
		col("Name", tS, "Pod name."),
		col("Namespace", tS, "Namespace of the pod."),
		col("PodCreationTimeStamp", tDT, "Pod creation time."),
		col("PodIp", tS, "IP address of the pod."),
		col("PodLabel", tS, "Pod labels, as JSON."),
		col("PodRestartCount", tI, "Sum of the restarts of all containers of the pod."),
		col("PodStartTime", tDT, "Time the pod started."),
		col("PodStatus", tS, "Last observed phase of the pod."),
		col("PodUid", tS, "Unique ID of the pod."),
		col("ServiceName", tS, "Services whose selector matches the pod."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
	}},
	{"KubeNodeInventory", "Kubernetes nodes, from the API server (Container insights).", []Column{
		col("TimeGenerated", tDT, "Date and time the inventory was taken."),
		col("ClusterId", tS, "ID of the Kubernetes cluster."),
		col("ClusterName", tS, "Name of the Kubernetes cluster."),
		col("Computer", tS, "Node name."),
		col("CreationTimeStamp", tDT, "Node creation time."),
		col("DockerVersion", tS, "Container runtime version."),
		col("KubeletVersion", tS, "Kubelet version."),
		col("KubeProxyVersion", tS, "Kube-proxy version."),
		col("KubernetesProviderID", tS, "Provider ID of the node."),
		col("Labels", tS, "Node labels, as JSON."),
		col("LastTransitionTimeReady", tDT, "Last transition time of the Ready condition."),
		col("OperatingSystem", tS, "OS image of the node."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
		col("Status", tS, "Conditions that hold (Ready, MemoryPressure, ...), comma separated."),
	}},
	{"KubeEvents", "Kubernetes events, from the API server (Container insights).", []Column{
		col("TimeGenerated", tDT, "Date and time the event was collected."),
		col("ClusterId", tS, "ID of the Kubernetes cluster."),
		col("ClusterName", tS, "Name of the Kubernetes cluster."),
		col("Computer", tS, "Node the event is about, if any."),
		col("Count", tR, "Number of times the event occurred."),
		col("FirstSeen", tDT, "First time the event was seen."),
		col("KubeEventType", tS, "Event type: Normal or Warning."),
		col("LastSeen", tDT, "Last time the event was seen."),
		col("Message", tS, "Event message."),
		col("Name", tS, "Name of the object the event is about."),
		col("Namespace", tS, "Namespace of the object."),
		col("ObjectKind", tS, "Kind of the object."),
		col("Reason", tS, "Event reason."),
		col("SourceComponent", tS, "Component that reported the event."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
	}},
	{"KubeServices", "Kubernetes services, from the API server (Container insights).", []Column{
		col("TimeGenerated", tDT, "Date and time the inventory was taken."),
		col("ClusterId", tS, "ID of the Kubernetes cluster."),
		col("ClusterIp", tS, "Cluster IP of the service."),
		col("ClusterName", tS, "Name of the Kubernetes cluster."),
		col("Namespace", tS, "Namespace of the service."),
		col("SelectorLabels", tS, "Selector of the service, as JSON."),
		col("ServiceName", tS, "Name of the service."),
		col("ServiceType", tS, "Type of the service."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
	}},
	{"ContainerInventory", "Containers of the cluster's pods (Container insights).", []Column{
		col("TimeGenerated", tDT, "Date and time the inventory was taken."),
		col("Computer", tS, "Node the container runs on."),
		col("Command", tS, "Command of the container."),
		col("ContainerHostname", tS, "Host name of the container (the pod name)."),
		col("ContainerID", tS, "Container ID."),
		col("ContainerState", tS, "State: Running, Waiting, Terminated."),
		col("CreatedTime", tDT, "Container creation time."),
		col("EnvironmentVar", tS, "Environment variables; collected only when enabled, never for containers that opt out."),
		col("ExitCode", tI, "Exit code of a terminated container."),
		col("FinishedTime", tDT, "Time a terminated container finished."),
		col("Image", tS, "Image name."),
		col("ImageID", tS, "Image ID (digest)."),
		col("ImageTag", tS, "Image tag."),
		col("Name", tS, "Container name, as poduid/containername."),
		col("Ports", tS, "Container ports, as JSON."),
		col("Repository", tS, "Image repository."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
		col("StartedTime", tDT, "Time the container started."),
	}},
	{"KubeAudit", "Kubernetes API server audit events (the columns of Azure's ArcK8sAudit/AKSAudit tables).", []Column{
		col("TimeGenerated", tDT, "Time the stage of the event was reached."),
		col("Annotations", tDy, "Annotations of the audit event."),
		col("AuditId", tS, "Unique audit ID of the request."),
		col("Level", tS, "Audit level: Metadata, Request, RequestResponse."),
		col("ObjectRef", tDy, "The Kubernetes object the request was about."),
		col("PodName", tS, "Name of the API server pod that wrote the event."),
		col("RequestObject", tDy, "Request object, at the Request level."),
		col("RequestReceivedTime", tDT, "Time the API server received the request."),
		col("RequestUri", tS, "URI of the request."),
		col("ResponseObject", tDy, "Response object, at the RequestResponse level."),
		col("ResponseStatus", tDy, "Response status with the code."),
		col("SourceIps", tDy, "Source IP addresses of the client and proxies."),
		col("SourceSystem", tS, "Type of agent the data was collected from."),
		col("Stage", tS, "Stage of the request: RequestReceived, ResponseStarted, ResponseComplete, Panic."),
		col("StageReceivedTime", tDT, "Time the request reached the stage."),
		col("User", tDy, "Authenticated user: username, uid, groups."),
		col("UserAgent", tS, "User agent of the client."),
		col("Verb", tS, "Kubernetes verb: get, list, watch, create, update, patch, delete."),
	}},
}
