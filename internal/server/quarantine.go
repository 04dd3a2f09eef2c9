package server

import (
	"net/http"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// quarantineRoute is GET /providers/Custos.Admin/quarantinedParts: the parts
// the store quarantined because they failed their integrity check
// (internal/store/quarantine.go), for operators and monitoring. It needs the
// metrics read action at "/" (the same operators see
// custos_store_parts_quarantined_total on /metrics).
func (s *Server) quarantineRoute() api.Route {
	return api.Route{
		Method:   http.MethodGet,
		Pattern:  "/providers/Custos.Admin/quarantinedParts",
		Audience: identity.AudienceManagement,
		Action:   rbac.ActionMetricsRead,
		Scope:    func(*http.Request) rbac.Scope { return "/" },
		Handler: arm.Handle(s.log, func(w http.ResponseWriter, r *http.Request) error {
			parts := []store.QuarantinedPart{}
			if s.store != nil {
				parts = append(parts, s.store.QuarantinedParts()...)
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"value": parts})
			return nil
		}),
	}
}
