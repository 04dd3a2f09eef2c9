package kubetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// rbacDoc is the part of a Role or ClusterRole the substitute enforces.
type rbacDoc struct {
	Kind     string
	Metadata struct{ Name, Namespace string }
	Rules    []struct {
		APIGroups []string `yaml:"apiGroups"`
		Resources []string
		Verbs     []string
	}
}

// findRBACDoc returns the document of the given kind and name in a manifest
// file of several YAML documents.
func findRBACDoc(path, kind, name string) (rbacDoc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return rbacDoc{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc rbacDoc
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return rbacDoc{}, fmt.Errorf("%s: no %s %s", path, kind, name)
			}
			return rbacDoc{}, fmt.Errorf("%s: %w", path, err)
		}
		if doc.Kind == kind && doc.Metadata.Name == name {
			return doc, nil
		}
	}
}

// RulesFromManifest reads the ClusterRole named role from a manifest file
// (several YAML documents) and returns its rules for core-group resources.
func RulesFromManifest(path, role string) (Rules, error) {
	doc, err := findRBACDoc(path, "ClusterRole", role)
	if err != nil {
		return nil, err
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

// RoleRulesFromManifest reads the namespaced Role named role from a
// manifest file and returns its rules: allowed only in the Role's own
// namespace (metadata.namespace), for the API groups, resources and verbs
// it lists (no wildcards are honoured, as least privilege wants none).
func RoleRulesFromManifest(path, role string) (RoleRules, error) {
	doc, err := findRBACDoc(path, "Role", role)
	if err != nil {
		return nil, err
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
