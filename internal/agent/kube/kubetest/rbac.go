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
