package agent

import (
	"encoding/json"
	"testing"
)

// TestEnvVarsEnabled: environment variables are collected only when the
// rule's ContainerInsights extension sets collectEnvironmentVariables: true.
func TestEnvVarsEnabled(t *testing.T) {
	for settings, want := range map[string]bool{
		``:     false,
		`null`: false,
		`{"dataCollectionSettings":{"interval":"1m"}}`:                     false,
		`{"dataCollectionSettings":{"collectEnvironmentVariables":false}}`: false,
		`{"dataCollectionSettings":{"collectEnvironmentVariables":true}}`:  true,
		`{"collectEnvironmentVariables":true}`:                             false, // not where the setting lives
	} {
		got, err := envVarsEnabled(ExtensionSource{Name: "ci", ExtensionSettings: json.RawMessage(settings)})
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", settings, got, err, want)
		}
	}
	if _, err := envVarsEnabled(ExtensionSource{Name: "ci", ExtensionSettings: json.RawMessage(`{"dataCollectionSettings":{"collectEnvironmentVariables":"yes"}}`)}); err == nil {
		t.Error("a string accepted as the switch")
	}
	for stream, table := range map[string]string{"Microsoft-KubePodInventory": "KubePodInventory", "microsoft-kubeevents": "KubeEvents",
		"Microsoft-ContainerInventory": "ContainerInventory", "Microsoft-KubeServices": "KubeServices", "Microsoft-KubeNodeInventory": "KubeNodeInventory"} {
		if got, ok := inventoryTable(stream); !ok || got != table {
			t.Errorf("inventoryTable(%s) = %s, %v", stream, got, ok)
		}
	}
	if _, ok := inventoryTable("Microsoft-ContainerLogV2"); ok {
		t.Error("ContainerLogV2 taken for an inventory stream")
	}
}
