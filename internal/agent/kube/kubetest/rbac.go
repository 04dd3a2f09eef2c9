package kubetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// RulesFromManifest reads the ClusterRole named role from a manifest file
// (several YAML documents) and returns its rules for core-group resources.
func RulesFromManifest(path, role string) (Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
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
		}
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: no ClusterRole %s", path, role)
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if doc.Kind != "ClusterRole" || doc.Metadata.Name != role {
			continue
		}
		allowed := map[string]bool{}
		for _, r := range doc.Rules {
			core := false
			for _, g := range r.APIGroups {
				core = core || g == ""
			}
			if !core {
				continue
			}
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					allowed[v+" "+res] = true
				}
			}
		}
		return func(verb, resource string) bool { return allowed[verb+" "+resource] }, nil
	}
}

// RoleRulesFromManifest reads the namespaced Role named role from a
// manifest file and returns its rules: allowed only in the Role's own
// namespace (metadata.namespace), for the API groups, resources and verbs
// it lists (no wildcards are honoured, as least privilege wants none).
func RoleRulesFromManifest(path, role string) (RoleRules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			Rules    []struct {
				APIGroups []string `yaml:"apiGroups"`
				Resources []string
				Verbs     []string
			}
		}
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: no Role %s", path, role)
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if doc.Kind != "Role" || doc.Metadata.Name != role {
			continue
		}
		if doc.Metadata.Namespace == "" {
			return nil, fmt.Errorf("%s: Role %s has no namespace", path, role)
		}
		allowed := map[string]bool{}
		for _, r := range doc.Rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						allowed[v+" "+g+" "+res] = true
					}
				}
			}
		}
		ns := doc.Metadata.Namespace
		return func(verb, group, resource, namespace string) bool {
			return namespace == ns && allowed[verb+" "+group+" "+resource]
		}, nil
	}
}
