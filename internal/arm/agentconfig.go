package arm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
)

// agentConfigurationWire is the answer of GET {machineId}/agentConfiguration
// (enroll.Configuration on the agent side): the data collection rules
// associated with the machine, each as GET dataCollectionRules/{name}
// returns it.
type agentConfigurationWire struct {
	ResourceID          string    `json:"resourceId"`
	DataCollectionRules []dcrWire `json:"dataCollectionRules"`
}

// getAgentConfiguration serves the agent's configuration to the machine's
// own identity only. The ETag is a hash of the body, so If-None-Match
// answers 304 until an association or an associated rule changes.
func (a *API) getAgentConfiguration(w http.ResponseWriter, r *http.Request) error {
	cfg, err := a.cat.MachineConfigurationFor(r.Context(), r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"),
		r.PathValue("machineName"))
	if err != nil {
		return err
	}
	return writeAgentConfiguration(w, r, "machine", cfg.Machine.ID(), cfg.Machine.PrincipalID, cfg.DataCollectionRules)
}

// writeAgentConfiguration answers an agent configuration request (machines
// and connected clusters) for the resource resID whose managed identity is
// principalID: only that identity may read it (403 otherwise). The ETag is
// a hash of the body, so If-None-Match answers 304 until an association or
// an associated rule changes.
func writeAgentConfiguration(w http.ResponseWriter, r *http.Request, kind, resID, principalID string, rules []catalog.DataCollectionRule) error {
	p, ok := api.PrincipalFrom(r.Context())
	if !ok || !strings.EqualFold(p.ObjectID, principalID) {
		return api.Errorf(http.StatusForbidden, "AuthorizationFailed",
			"The client '%s' with object id '%s' is not the managed identity of %s '%s'; only the %s's own identity may read its agent configuration.",
			p.AppID, p.ObjectID, kind, resID, strings.TrimPrefix(kind, "connected "))
	}
	out := agentConfigurationWire{ResourceID: resID, DataCollectionRules: []dcrWire{}}
	for i := range rules {
		out.DataCollectionRules = append(out.DataCollectionRules, toDCRWire(&rules[i]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// etagMatches compares an If-None-Match list (weak or strong) with etag.
func etagMatches(header, etag string) bool {
	for _, h := range strings.Split(header, ",") {
		h = strings.TrimPrefix(strings.TrimSpace(h), "W/")
		if h == "*" || h == etag {
			return true
		}
	}
	return false
}
