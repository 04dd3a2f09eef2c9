package agent

import (
	"bytes"
	"os"
	"path"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestKubernetesManifests checks that deploy/kubernetes runs the Kubernetes
// mode as shipped: the ConfigMap's agent.yaml is a valid configuration with
// kubernetes enabled, the DaemonSet's --config is that key where the
// ConfigMap is mounted, every path the configuration names is mounted, and
// the example rule parses with its ContainerInsights extension.
func TestKubernetesManifests(t *testing.T) {
	dir := "../../deploy/kubernetes"
	var cm struct {
		Metadata struct{ Name string }
		Data     map[string]string
	}
	b, err := os.ReadFile(dir + "/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(cm.Data["agent.yaml"]))
	if err != nil {
		t.Fatalf("the ConfigMap's agent.yaml: %v", err)
	}
	k := cfg.Kubernetes
	if !k.Enabled || k.CollectEnvVars || k.Role != KubeRoleNode || k.DisablePodMetadata || k.LogRoot != "/var/log/pods" || cfg.Syslog.UDP != "off" || cfg.Syslog.TCP != "off" {
		t.Fatalf("shipped configuration: %+v", cfg)
	}

	var ds struct {
		Kind string
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args         []string
						Env          []struct{ Name string }
						VolumeMounts []struct {
							Name      string
							MountPath string `yaml:"mountPath"`
							ReadOnly  bool   `yaml:"readOnly"`
						} `yaml:"volumeMounts"`
					}
					Volumes []struct {
						Name      string
						ConfigMap *struct{ Name string } `yaml:"configMap"`
						Secret    *struct {
							SecretName string `yaml:"secretName"`
						}
						HostPath *struct{ Path string } `yaml:"hostPath"`
					}
				}
			}
		}
	}
	b, err = os.ReadFile(dir + "/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ds); err != nil {
		t.Fatal(err)
	}
	ps := ds.Spec.Template.Spec
	if ds.Kind != "DaemonSet" || len(ps.Containers) != 1 {
		t.Fatalf("daemonset: %+v", ds)
	}
	c := ps.Containers[0]
	vols := map[string]string{} // volume name → what it is
	for _, v := range ps.Volumes {
		switch {
		case v.ConfigMap != nil:
			vols[v.Name] = "configmap:" + v.ConfigMap.Name
		case v.Secret != nil:
			vols[v.Name] = "secret:" + v.Secret.SecretName
		case v.HostPath != nil:
			vols[v.Name] = "hostpath:" + v.HostPath.Path
		default:
			vols[v.Name] = "other"
		}
	}
	mountOf := func(p string) (volume string, readOnly, found bool) { // the deepest mount holding p
		best := ""
		for _, m := range c.VolumeMounts {
			if (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) && len(m.MountPath) > len(best) {
				best, volume, readOnly, found = m.MountPath, m.Name, m.ReadOnly, true
			}
		}
		return volume, readOnly, found
	}
	if len(c.Args) != 3 || c.Args[0] != "run" || c.Args[1] != "--config" {
		t.Fatalf("args %v", c.Args)
	}
	if v, _, ok := mountOf(c.Args[2]); !ok || vols[v] != "configmap:"+cm.Metadata.Name || path.Base(c.Args[2]) != "agent.yaml" {
		t.Fatalf("--config %s is not agent.yaml of ConfigMap %s (volume %q: %v)", c.Args[2], cm.Metadata.Name, v, vols)
	}
	for p, wantRO := range map[string]bool{cfg.CAFile: true, cfg.CredentialsFile: true, cfg.DCR.Dir: true, k.LogRoot: true, cfg.StateDir: false} {
		v, ro, ok := mountOf(p)
		if !ok || ro != wantRO {
			t.Errorf("%s: mounted %v (volume %q), read-only %v, want read-only %v", p, ok, v, ro, wantRO)
		}
	}
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	if k.KubeletURL == "" && !env["NODE_IP"] || k.NodeName == "" && !env["NODE_NAME"] {
		t.Errorf("NODE_IP/NODE_NAME not set: %v", env)
	}

	rule, err := os.ReadFile(dir + "/dcr-example.json")
	if err != nil {
		t.Fatal(err)
	}
	rule = bytes.Replace(rule, []byte(`"properties": {`), []byte(`"properties": {"immutableId": "dcr-00000000000000000000000000000000",`), 1)
	d, err := ParseDCR(rule)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.DataSources.Extensions) != 1 || len(d.Unsupported) != 0 {
		t.Fatalf("example rule: %+v", d.DataSources)
	}
	for _, s := range d.DataSources.Extensions[0].Streams {
		if !d.flows(s) {
			t.Errorf("example rule: stream %s has no data flow", s)
		}
	}
	kust, err := os.ReadFile(dir + "/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"daemonset.yaml", "deployment.yaml", "rbac.yaml", "serviceaccount.yaml", "configmap.yaml"} {
		if !strings.Contains(string(kust), "- "+f) {
			t.Errorf("kustomization does not ship %s", f)
		}
	}
	if _, ok := d.DataSources.Extensions[0].ContainerInsights(); ok != nil {
		t.Error(ok)
	}
	if on, err := envVarsEnabled(d.DataSources.Extensions[0]); err != nil || on {
		t.Errorf("example rule collects environment variables: %v %v", on, err)
	}
	for _, s := range []string{StreamKubePodInventory, StreamKubeNodeInventory, StreamKubeEvents, StreamKubeServices, StreamContainerInventory} {
		if !d.flows(s) {
			t.Errorf("example rule: no data flow for %s", s)
		}
	}
	checkClusterDeployment(t, dir, cm.Data["cluster.yaml"])
	checkRBAC(t, dir)
}

type podSpec struct {
	ServiceAccountName string `yaml:"serviceAccountName"`
	SecurityContext    struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    int   `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Args []string
		Env  []struct {
			Name      string
			ValueFrom *struct {
				FieldRef struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		}
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct{ Drop []string }
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string
			Limits   map[string]string
		}
		VolumeMounts []struct {
			Name      string
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	Volumes []struct {
		Name      string
		ConfigMap *struct{ Name string } `yaml:"configMap"`
		HostPath  *struct{ Path string } `yaml:"hostPath"`
	}
}

// checkClusterDeployment: the single-replica Deployment runs the cluster
// role from the ConfigMap's cluster.yaml under its own ServiceAccount,
// hardened like the DaemonSet and without host paths.
func checkClusterDeployment(t *testing.T, dir, clusterYAML string) {
	t.Helper()
	cfg, err := ParseConfig([]byte(clusterYAML))
	if err != nil {
		t.Fatalf("the ConfigMap's cluster.yaml: %v", err)
	}
	if k := cfg.Kubernetes; !k.Enabled || k.Role != KubeRoleCluster || k.CollectEnvVars {
		t.Errorf("cluster.yaml kubernetes section: %+v", k)
	}
	var dep struct {
		Kind     string
		Metadata struct{ Name string }
		Spec     struct {
			Replicas int
			Strategy struct{ Type string }
			Template struct{ Spec podSpec }
		}
	}
	b, err := os.ReadFile(dir + "/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &dep); err != nil {
		t.Fatal(err)
	}
	ps := dep.Spec.Template.Spec
	// Two replicas: leader election (a Lease in the pod's namespace) lets
	// only one collect, so a rolling update or a lost node leaves a standby.
	if dep.Kind != "Deployment" || dep.Spec.Replicas != 2 || dep.Spec.Strategy.Type != "RollingUpdate" || len(ps.Containers) != 1 {
		t.Fatalf("deployment: %+v", dep)
	}
	env := map[string]string{}
	for _, e := range ps.Containers[0].Env {
		if e.ValueFrom != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_NAMESPACE"] != "metadata.namespace" || env["POD_NAME"] != "metadata.name" {
		t.Errorf("deployment env %v: want POD_NAMESPACE and POD_NAME from the downward API (the leases' namespace, the candidate's identity)", env)
	}
	if ps.ServiceAccountName != "custos-agent-cluster" {
		t.Errorf("deployment runs as %q, want its own ServiceAccount custos-agent-cluster", ps.ServiceAccountName)
	}
	c := ps.Containers[0]
	if len(c.Args) != 3 || c.Args[0] != "run" || c.Args[2] != "/etc/custos/config/cluster.yaml" {
		t.Errorf("deployment args %v", c.Args)
	}
	sc := c.SecurityContext
	if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == 0 ||
		!sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("deployment is not hardened: %+v %+v", ps.SecurityContext, sc)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["cpu"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("deployment resources: %+v", c.Resources)
	}
	vols := map[string]bool{}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			t.Errorf("deployment mounts host path %s", v.HostPath.Path)
		}
		if v.ConfigMap != nil && v.ConfigMap.Name == "custos-agent" {
			vols[v.Name] = true
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if vols[m.Name] && m.MountPath == "/etc/custos/config" && m.ReadOnly {
			mounted = true
		}
		if p := cfg.StateDir; m.MountPath != p && m.MountPath != "/tmp" && !m.ReadOnly {
			t.Errorf("writable mount %s", m.MountPath)
		}
	}
	if !mounted {
		t.Error("the ConfigMap is not mounted read-only at /etc/custos/config")
	}
}

// checkRBAC: each ServiceAccount is bound to its own ClusterRole, whose
// rules are exactly the read verbs on exactly the resources it uses.
func checkRBAC(t *testing.T, dir string) {
	t.Helper()
	roles, bindings := KubeRBAC(t, dir+"/rbac.yaml")
	want := map[string]map[string]bool{
		"custos-agent":         {"get nodes/stats": true, "list pods": true, "watch pods": true},
		"custos-agent-cluster": {"list pods": true, "watch pods": true, "list nodes": true, "watch nodes": true, "list services": true, "watch services": true, "list events": true, "watch events": true},
	}
	for name, w := range want {
		got := roles[name]
		if len(got) != len(w) {
			t.Errorf("ClusterRole %s grants %v; want exactly %v", name, got, w)
		}
		for g := range got {
			if !w[g] {
				t.Errorf("ClusterRole %s grants %q, which nothing uses", name, g)
			}
		}
		if bindings["custos-system/"+name] != name {
			t.Errorf("ServiceAccount %s is bound to %q", name, bindings["custos-system/"+name])
		}
	}
	if len(roles) != len(want) {
		t.Errorf("ClusterRoles %v", roles)
	}
	checkLeaseRole(t, dir+"/rbac.yaml")
}

// checkLeaseRole: the cluster agent's leader election may get, create and
// update leases, in its own namespace only (a Role bound by a RoleBinding
// there), and nothing else is namespaced.
func checkLeaseRole(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var roles, bindings []string
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			Rules    []struct {
				APIGroups     []string `yaml:"apiGroups"`
				Resources     []string
				Verbs         []string
				ResourceNames []string `yaml:"resourceNames"`
			}
			RoleRef  struct{ Kind, Name string } `yaml:"roleRef"`
			Subjects []struct{ Kind, Name, Namespace string }
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		switch doc.Kind {
		case "Role":
			for _, r := range doc.Rules {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							roles = append(roles, doc.Metadata.Namespace+"/"+doc.Metadata.Name+": "+v+" "+g+"/"+res)
						}
					}
				}
			}
		case "RoleBinding":
			for _, s := range doc.Subjects {
				bindings = append(bindings, doc.Metadata.Namespace+": "+s.Kind+" "+s.Namespace+"/"+s.Name+" → "+doc.RoleRef.Kind+" "+doc.RoleRef.Name)
			}
		}
	}
	wantRoles := []string{
		"custos-system/custos-agent-cluster-leader: get coordination.k8s.io/leases",
		"custos-system/custos-agent-cluster-leader: create coordination.k8s.io/leases",
		"custos-system/custos-agent-cluster-leader: update coordination.k8s.io/leases",
	}
	if strings.Join(roles, "\n") != strings.Join(wantRoles, "\n") {
		t.Errorf("Roles grant\n%s\nwant exactly\n%s", strings.Join(roles, "\n"), strings.Join(wantRoles, "\n"))
	}
	want := "custos-system: ServiceAccount custos-system/custos-agent-cluster → Role custos-agent-cluster-leader"
	if len(bindings) != 1 || bindings[0] != want {
		t.Errorf("RoleBindings %q; want %q", bindings, want)
	}
}

// KubeRBAC reads the ClusterRoles (name → set of "verb resource") and
// ClusterRoleBindings (namespace/serviceaccount → role) of a manifest;
// wildcards and non-core API groups fail the test.
func KubeRBAC(t *testing.T, path string) (roles map[string]map[string]bool, bindings map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	roles, bindings = map[string]map[string]bool{}, map[string]string{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc struct {
			Kind     string
			Metadata struct{ Name string }
			Rules    []struct {
				APIGroups []string `yaml:"apiGroups"`
				Resources []string
				Verbs     []string
			}
			RoleRef  struct{ Kind, Name string } `yaml:"roleRef"`
			Subjects []struct{ Kind, Name, Namespace string }
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		switch doc.Kind {
		case "ClusterRole":
			set := map[string]bool{}
			for _, r := range doc.Rules {
				if len(r.APIGroups) != 1 || r.APIGroups[0] != "" {
					t.Errorf("ClusterRole %s: API groups %v", doc.Metadata.Name, r.APIGroups)
				}
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						if res == "*" || v == "*" || res == "secrets" || res == "configmaps" || !slicesContains([]string{"get", "list", "watch"}, v) {
							t.Errorf("ClusterRole %s: %s %s is not least privilege", doc.Metadata.Name, v, res)
						}
						set[v+" "+res] = true
					}
				}
			}
			roles[doc.Metadata.Name] = set
		case "ClusterRoleBinding":
			for _, s := range doc.Subjects {
				if s.Kind == "ServiceAccount" && doc.RoleRef.Kind == "ClusterRole" {
					bindings[s.Namespace+"/"+s.Name] = doc.RoleRef.Name
				}
			}
		}
	}
	return roles, bindings
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
