package server

import (
	"errors"
	"net/http"

	"custos/internal/activity"
	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// actionActivityLogRead reads the activity log, as Azure names it.
const actionActivityLogRead rbac.Action = "Microsoft.Insights/eventtypes/values/read"

// activityVerifyRoute is GET /providers/Custos.Admin/activityLog/verification:
// the result of walking the activity log's hash chain and signed checkpoints
// (what `custos admin verify-activity-log` does offline), for the portal and
// monitoring. It needs the activity log read action at "/".
func (s *Server) activityVerifyRoute() api.Route {
	return api.Route{
		Method:   http.MethodGet,
		Pattern:  "/providers/Custos.Admin/activityLog/verification",
		Audience: identity.AudienceManagement,
		Action:   actionActivityLogRead,
		Scope:    func(*http.Request) rbac.Scope { return "/" },
		Handler: arm.Handle(s.log, func(w http.ResponseWriter, r *http.Request) error {
			rep, err := activity.Verify(r.Context(), s.catalog, s.keys)
			var ce *activity.ChainError
			switch {
			case errors.As(err, &ce):
				api.WriteJSON(w, http.StatusOK, map[string]any{"intact": false, "firstBadRecord": ce.Seq, "message": ce.Msg})
				return nil
			case err != nil:
				return err
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"intact": true, "records": rep.Records, "lastSequence": rep.LastSeq,
				"lastHash": rep.LastHash, "checkpoints": rep.Checkpoints})
			return nil
		}),
	}
}
