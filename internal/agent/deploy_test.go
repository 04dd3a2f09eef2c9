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
	if !k.Enabled || k.CollectEnvVars || k.LogRoot != "/var/log/pods" || cfg.Syslog.UDP != "off" || cfg.Syslog.TCP != "off" {
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
	if strings.Contains(string(kust), "deployment.yaml") {
		t.Error("kustomization ships a Deployment, but no cluster-wide collector exists")
	}
}
