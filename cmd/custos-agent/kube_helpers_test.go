package main

import (
	"fmt"
	"net/http"
	"time"
)

// createKubeRule creates a rule named name with one ContainerInsights
// extension collecting streams (each also in the data flow) with the given
// dataCollectionSettings, grants the bootstrap admin Monitoring Metrics
// Publisher on it (assignment is the role assignment's name), and waits
// until the ingestion API accepts a batch for it.
func (e *env) createKubeRule(name string, streams []string, settings map[string]any, assignment string) ruleInfo {
	t := e.t
	t.Helper()
	wsID := e.workspaceID()
	rule := map[string]any{
		"kind": "Linux",
		"properties": map[string]any{
			"dataSources": map[string]any{"extensions": []map[string]any{{
				"name": "ContainerInsightsExtension", "streams": streams, "extensionName": "ContainerInsights",
				"extensionSettings": map[string]any{"dataCollectionSettings": settings},
			}}},
			"destinations": map[string]any{"logAnalytics": []map[string]string{{"name": "la", "workspaceResourceId": wsID}}},
			"dataFlows":    []map[string]any{{"streams": streams, "destinations": []string{"la"}}},
		},
	}
	info := e.putRule(name, rule)
	e.grantPublisher(info.id, jwtClaim(e.token("https://management.azure.com/.default"), "oid"), assignment)
	// An empty array is a valid no-op batch: it tells when the assignment
	// takes effect (and that the server resolves the undeclared built-in
	// Microsoft-<Table> streams of rules read from the catalog).
	var status int
	var body []byte
	waitFor(t, "the role assignment to take effect", 20*time.Second, func() bool {
		status, body = e.do("POST", e.adm.Endpoint+"/dataCollectionRules/"+info.immutableID+"/streams/"+streams[0]+"?api-version=2023-01-01",
			"https://monitor.azure.com//.default", []byte("[]"), nil)
		return status != http.StatusForbidden
	})
	if status != http.StatusNoContent {
		t.Fatalf("empty batch to the undeclared built-in stream %s: %d %s; want 204", streams[0], status, body)
	}
	return info
}

// kubeAgentConfig is a custos-agent configuration in Kubernetes mode for the
// rule file in dcrDir; extra is appended to the kubernetes section (indented
// two spaces per line by the caller).
func kubeAgentConfig(e *env, credFile, stateDir, dcrDir, extra string) string {
	return fmt.Sprintf(`endpoint: %s
caFile: %s
credentialsFile: %s
stateDir: %s
dcr:
  dir: %s
  pollInterval: 300ms
syslog:
  udp: "off"
  tcp: "off"
files:
  pollInterval: 100ms
  readFromStart: true
delivery:
  minBackoff: 200ms
  maxBackoff: 1s
  flushInterval: 200ms
logLevel: debug
kubernetes:
  enabled: true
%s`, e.adm.Endpoint, e.adm.CAFile, credFile, stateDir, dcrDir, extra)
}
