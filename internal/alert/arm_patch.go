package alert

import (
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
)

// rulePatch is the PATCH body of the alert rule types, as Azure's: tags,
// properties.enabled and, for log search and metric rules, the identity.
type rulePatch struct {
	Tags       map[string]string `json:"tags"`
	Identity   *identityWire     `json:"identity"`
	Properties *struct {
		Enabled *bool `json:"enabled"`
	} `json:"properties"`
}

// readRulePatch decodes a PATCH body and loads the stored rule of type typ
// that the path names. A rule type without an identity (withIdentity false)
// refuses one. When the client sent no If-Match, the stored ETag becomes
// it, so that no update is lost between this read and the write.
func (s *Service) readRulePatch(r *http.Request, typ string, withIdentity bool) (rulePatch, catalog.AlertResource, error) {
	var req rulePatch
	if err := api.DecodeJSON(r, &req, s.opts.MaxBodyBytes); err != nil {
		return req, catalog.AlertResource{}, err
	}
	if req.Identity != nil && !withIdentity {
		return req, catalog.AlertResource{}, invalid("identity", "This rule type has no identity.")
	}
	res, err := s.cat.AlertResource(r.Context(), typ, r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("ruleName"))
	if err != nil {
		return req, res, err
	}
	if r.Header.Get("If-Match") == "" {
		r.Header.Set("If-Match", res.ETag)
	}
	return req, res, nil
}

// apply returns the rule's tags after the patch (stored unless the patch
// has tags) and sets *enabled when the patch changes it.
func (p rulePatch) apply(stored map[string]string, enabled **bool) map[string]string {
	if p.Properties != nil && p.Properties.Enabled != nil {
		*enabled = p.Properties.Enabled
	}
	if p.Tags != nil {
		return p.Tags
	}
	return stored
}
