package alert

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
)

const alertTypeWire = "Microsoft.AlertsManagement/alerts"

type alertWire struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Properties alertPropsWire `json:"properties"`
}

type alertPropsWire struct {
	Essentials   alertEssentialsWire `json:"essentials"`
	Context      json.RawMessage     `json:"context"`
	EgressConfig map[string]any      `json:"egressConfig"`
}

type alertEssentialsWire struct {
	Severity                         string          `json:"severity"`
	SignalType                       string          `json:"signalType"`
	AlertState                       string          `json:"alertState"`
	MonitorCondition                 string          `json:"monitorCondition"`
	TargetResource                   string          `json:"targetResource"`
	TargetResourceName               string          `json:"targetResourceName"`
	TargetResourceGroup              string          `json:"targetResourceGroup"`
	TargetResourceType               string          `json:"targetResourceType"`
	MonitorService                   string          `json:"monitorService"`
	AlertRule                        string          `json:"alertRule"`
	SourceCreatedID                  string          `json:"sourceCreatedId"`
	StartDateTime                    string          `json:"startDateTime"`
	LastModifiedDateTime             string          `json:"lastModifiedDateTime"`
	MonitorConditionResolvedDateTime string          `json:"monitorConditionResolvedDateTime,omitempty"`
	LastModifiedUserName             string          `json:"lastModifiedUserName"`
	ActionStatus                     map[string]bool `json:"actionStatus"`
	Description                      string          `json:"description"`
}

// toAlertWire shows a stored alert. Its payload is opened with its
// workspace's key; when that fails (the key is revoked) the alert is shown
// without its essentials' details and context.
func (s *Service) toAlertWire(ctx context.Context, a *catalog.AlertRecord) alertWire {
	var d alertDoc
	_ = json.Unmarshal(a.Doc, &d)
	payload, err := s.docPayload(ctx, &d, a.ID)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "alert payload unavailable", slog.String("alert_id", a.ID), slog.Any("error", err))
	}
	es := &payload.Data.Essentials
	actx, _ := json.Marshal(payload.Data.AlertContext)
	name := es.AlertRule
	if name == "" {
		name = a.ID
	}
	signal, service := es.SignalType, es.MonitoringService
	if signal == "" {
		signal, service = "Log", monitoringService
	}
	return alertWire{
		ID: alertResourceID(es.subscriptionOr(a.SubscriptionID), a.ID), Type: alertTypeWire, Name: name,
		Properties: alertPropsWire{
			Essentials: alertEssentialsWire{
				Severity: a.Severity, SignalType: signal, AlertState: a.AlertState, MonitorCondition: a.MonitorCondition,
				TargetResource: d.TargetResource, TargetResourceName: d.TargetName, TargetResourceGroup: es.TargetResourceGroup,
				TargetResourceType: es.TargetResourceType, MonitorService: service, AlertRule: a.RuleID,
				SourceCreatedID: es.OriginAlertID, StartDateTime: arm.WireTime(a.FiredAt), LastModifiedDateTime: arm.WireTime(a.ModifiedAt),
				MonitorConditionResolvedDateTime: arm.WireTime(d.ResolvedAt), LastModifiedUserName: d.LastModifiedBy,
				ActionStatus: map[string]bool{"isSuppressed": d.ActionSuppressed}, Description: es.Description,
			},
			Context: actx, EgressConfig: map[string]any{},
		},
	}
}

// subscriptionOr returns the subscription of the alert ID, or def.
func (e *Essentials) subscriptionOr(def string) string {
	p := strings.Split(e.AlertID, "/")
	if len(p) > 2 && strings.EqualFold(p[1], "subscriptions") && p[2] != "" {
		return p[2]
	}
	return def
}

// listAlerts supports Azure's filters monitorCondition, alertState,
// severity, alertRule and timeRange (1h, 1d, 7d, 30d), plus pageCount.
func (s *Service) listAlerts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := catalog.AlertFilter{SubscriptionID: r.PathValue("subscriptionId"), MonitorCondition: q.Get("monitorCondition"),
		AlertState: q.Get("alertState"), Severity: q.Get("severity"), RuleID: q.Get("alertRule")}
	for _, v := range []struct{ name, val string }{{"monitorCondition", f.MonitorCondition}, {"alertState", f.AlertState}, {"severity", f.Severity}} {
		if strings.Contains(v.val, ",") {
			return invalid(v.name, "Only one value of %s may be given.", v.name)
		}
	}
	if tr := q.Get("timeRange"); tr != "" {
		d := map[string]time.Duration{"1h": time.Hour, "1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}[tr]
		if d == 0 {
			return invalid("timeRange", "The timeRange '%s' is invalid. It must be 1h, 1d, 7d or 30d.", truncate(tr, 20))
		}
		f.Since = s.now().Add(-d)
	}
	if pc := q.Get("pageCount"); pc != "" {
		n, err := strconv.Atoi(pc)
		if err != nil || n < 1 || n > 250 {
			return invalid("pageCount", "The pageCount must be between 1 and 250.")
		}
		f.Limit = n
	}
	as, err := s.cat.Alerts(r.Context(), f)
	if err != nil {
		return err
	}
	out := list[alertWire]{Value: []alertWire{}}
	for i := range as {
		out.Value = append(out.Value, s.toAlertWire(r.Context(), &as[i]))
	}
	writeJSON(w, http.StatusOK, "", out)
	return nil
}

func (s *Service) getAlert(w http.ResponseWriter, r *http.Request) error {
	a, err := s.cat.Alert(r.Context(), r.PathValue("subscriptionId"), r.PathValue("alertId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "", s.toAlertWire(r.Context(), &a))
	return nil
}

// changeState sets the user state: POST .../alerts/{id}/changestate?newState=Acknowledged.
func (s *Service) changeState(w http.ResponseWriter, r *http.Request) error {
	ns := r.URL.Query().Get("newState")
	switch ns {
	case StateNew, StateAcknowledged, StateClosed:
	default:
		return invalid("newState", "The newState '%s' is invalid. It must be New, Acknowledged or Closed.", truncate(ns, 50))
	}
	by := "unknown"
	if p, ok := api.PrincipalFrom(r.Context()); ok {
		by = p.ObjectID
		if p.Name != "" {
			by = p.Name
		}
	}
	comment := ""
	if r.ContentLength != 0 && r.Body != nil {
		var body struct {
			Comments string `json:"comments"`
		}
		if err := api.DecodeJSON(r, &body, 16<<10); err == nil {
			comment = truncate(body.Comments, 1000)
		}
	}
	now := s.now().UTC()
	a, err := s.cat.UpdateAlert(r.Context(), r.PathValue("subscriptionId"), r.PathValue("alertId"),
		func(a *catalog.AlertRecord) (json.RawMessage, error) {
			if a.AlertState == ns {
				return nil, nil
			}
			old := a.AlertState
			a.AlertState, a.ModifiedAt = ns, now
			var d alertDoc
			_ = json.Unmarshal(a.Doc, &d)
			d.LastModifiedBy = by
			a.Doc, _ = json.Marshal(d)
			b, _ := json.Marshal(historyEvent{Event: "StateChange", OldValue: old, NewValue: ns, ModifiedAt: arm.WireTime(now),
				ModifiedBy: by, Comments: comment, Description: "State changed from '" + old + "' to '" + ns + "'"})
			return b, nil
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "", s.toAlertWire(r.Context(), &a))
	return nil
}

func (s *Service) alertHistory(w http.ResponseWriter, r *http.Request) error {
	a, err := s.cat.Alert(r.Context(), r.PathValue("subscriptionId"), r.PathValue("alertId"))
	if err != nil {
		return err
	}
	hs, err := s.cat.AlertHistory(r.Context(), a.ID)
	if err != nil {
		return err
	}
	mods := make([]json.RawMessage, 0, len(hs))
	for _, h := range hs {
		mods = append(mods, h.Event)
	}
	writeJSON(w, http.StatusOK, "", map[string]any{
		"id": alertResourceID(r.PathValue("subscriptionId"), a.ID) + "/history/default", "type": alertTypeWire, "name": "default",
		"properties": map[string]any{"alertId": a.ID, "modifications": mods},
	})
	return nil
}

// notificationWire is a Custos extension: the notifications of an alert and
// every delivery attempt.
type notificationWire struct {
	ID            string        `json:"id"`
	ReceiverType  string        `json:"receiverType"`
	ActionGroupID string        `json:"actionGroupId"`
	Receiver      string        `json:"receiver"`
	Condition     string        `json:"monitorCondition"`
	Status        string        `json:"status"`
	Attempts      int           `json:"attempts"`
	CreatedAt     string        `json:"createdAt"`
	NextAttemptAt string        `json:"nextAttemptAt,omitempty"`
	LastError     string        `json:"lastError,omitempty"`
	Deliveries    []attemptWire `json:"deliveryAttempts"`
}

type attemptWire struct {
	Attempt    int    `json:"attempt"`
	At         string `json:"at"`
	Target     string `json:"target"`
	StatusCode int    `json:"statusCode,omitempty"`
	Outcome    string `json:"outcome"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

func (s *Service) alertNotifications(w http.ResponseWriter, r *http.Request) error {
	a, err := s.cat.Alert(r.Context(), r.PathValue("subscriptionId"), r.PathValue("alertId"))
	if err != nil {
		return err
	}
	ns, err := s.cat.AlertNotifications(r.Context(), a.ID)
	if err != nil {
		return err
	}
	out := list[notificationWire]{Value: []notificationWire{}}
	for _, n := range ns {
		var p CommonAlertSchema
		if plain, err := s.openPayload(r.Context(), n.Payload, n.AlertID); err == nil {
			_ = json.Unmarshal(plain, &p)
		}
		nw := notificationWire{ID: n.ID, ReceiverType: n.ReceiverType, ActionGroupID: n.ActionGroupID, Receiver: n.Receiver,
			Condition: p.Data.Essentials.MonitorCondition, Status: n.Status, Attempts: n.Attempts, CreatedAt: arm.WireTime(n.CreatedAt),
			LastError: n.LastError, Deliveries: []attemptWire{}}
		if n.Status == catalog.NotificationPending {
			nw.NextAttemptAt = arm.WireTime(n.NextAttemptAt)
		}
		ds, err := s.cat.DeliveryAttempts(r.Context(), n.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			nw.Deliveries = append(nw.Deliveries, attemptWire{Attempt: d.Attempt, At: arm.WireTime(d.At), Target: d.Target,
				StatusCode: d.StatusCode, Outcome: d.Outcome, Error: d.Error, DurationMs: d.Duration.Milliseconds()})
		}
		out.Value = append(out.Value, nw)
	}
	writeJSON(w, http.StatusOK, "", out)
	return nil
}
