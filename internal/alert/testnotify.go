package alert

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"custos/internal/arm"
	"custos/internal/catalog"
)

// testAlertPrefix marks the synthetic alert ID of a test notification run.
const testAlertPrefix = "test-"

// createNotifications is Azure's action group test:
// POST .../actionGroups/{name}/createNotifications {"alertType":"logalertv2"}
// answers 202 with a Location to poll (notificationStatus/{id}). Every
// receiver of the group gets a sample common-schema payload through the
// normal delivery path (signatures, retries, recorded attempts).
func (s *Service) createNotifications(w http.ResponseWriter, r *http.Request) error {
	// The body names the alert type and, optionally, which of the group's
	// receivers to test (by name). Receivers are never taken from the body:
	// a test cannot send to an address the group does not have.
	var req struct {
		AlertType        string                  `json:"alertType"`
		EmailReceivers   []struct{ Name string } `json:"emailReceivers"`
		WebhookReceivers []struct{ Name string } `json:"webhookReceivers"`
	}
	if r.ContentLength != 0 {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
		if err != nil || len(body) > 64<<10 {
			return invalid("", "The request body could not be read or is larger than 64 KiB.")
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				return invalidCode("InvalidRequestContent", "", "The request content was invalid and could not be deserialized: %v", err)
			}
		}
	}
	if req.AlertType != "" && !strings.EqualFold(req.AlertType, "logalertv2") {
		return invalid("alertType", "The alertType '%s' is not supported; Custos sends test notifications of type 'logalertv2'.", truncate(req.AlertType, 50))
	}
	ctx := r.Context()
	res, err := s.cat.AlertResource(ctx, catalog.TypeActionGroup, r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("actionGroupName"))
	if err != nil {
		return err
	}
	g, err := parseActionGroup(&res)
	if err != nil {
		return err
	}
	id, err := s.newGUID()
	if err != nil {
		return err
	}
	now := s.now().UTC()
	alertID := testAlertPrefix + id
	rl := &rule{ID: res.ID(), SubscriptionID: res.SubscriptionID, Name: "Test Alert Rule", Severity: 4,
		Window: 5 * time.Minute, Periods: 1, MinFailing: 1,
		Props: ruleProperties{Description: "Test notification from Custos", Scopes: []string{}}}
	thr := 0.0
	rl.Crit = criterion{Query: "print TestNotification = 1", TimeAggregation: AggCount, Operator: OpGreaterThan, Threshold: &thr}
	payload := s.payload(rl, &seriesState{AlertID: id, LastValue: 1}, ConditionFired, nil, now.Add(-5*time.Minute), now, now, time.Time{})
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode test payload: %w", err)
	}
	ns := s.notificationsFor(rl, alertID, ConditionFired, []*actionGroup{g}, body, now)
	if len(req.EmailReceivers)+len(req.WebhookReceivers) > 0 {
		want := map[string]bool{}
		for _, e := range req.EmailReceivers {
			want[receiverEmail+"\x00"+e.Name] = true
		}
		for _, w := range req.WebhookReceivers {
			want[receiverWebhook+"\x00"+w.Name] = true
		}
		kept := ns[:0]
		for _, n := range ns {
			if want[n.ReceiverType+"\x00"+n.Receiver] {
				kept = append(kept, n)
			}
		}
		ns = kept
	}
	if len(ns) == 0 {
		return invalid("", "The action group has no matching email or webhook receivers to test.")
	}
	if err := s.cat.QueueNotifications(ctx, ns); err != nil {
		return err
	}
	wake(s.wakeDeliver)
	w.Header().Set("Location", strings.TrimSuffix(res.ID(), "/")+"/notificationStatus/"+id+"?api-version="+r.URL.Query().Get("api-version"))
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type testActionDetail struct {
	MechanismType string `json:"MechanismType"`
	Name          string `json:"Name"`
	Status        string `json:"Status"`
	SubState      string `json:"SubState,omitempty"`
	SendTime      string `json:"SendTime,omitempty"`
	Detail        string `json:"Detail,omitempty"`
}

// notificationStatus reports a test run: GET .../actionGroups/{name}/notificationStatus/{id}.
func (s *Service) notificationStatus(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("notificationId")
	ns, err := s.cat.AlertNotifications(r.Context(), testAlertPrefix+strings.ToLower(id))
	if err != nil {
		return err
	}
	if len(ns) == 0 {
		return notFound("NotFound", "The test notification '%s' was not found.", truncate(id, 100))
	}
	group := catalog.AlertResourceID(catalog.TypeActionGroup, r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("actionGroupName"))
	state := "Complete"
	var details []testActionDetail
	for _, n := range ns {
		if !strings.EqualFold(n.ActionGroupID, group) {
			return notFound("NotFound", "The test notification '%s' was not found.", truncate(id, 100))
		}
		if n.Status == catalog.NotificationPending {
			state = "InProgress"
		}
		mech := "Webhook"
		if n.ReceiverType == receiverEmail {
			mech = "Email"
		}
		d := testActionDetail{MechanismType: mech, Name: n.Receiver, Status: n.Status, Detail: n.LastError}
		if n.Attempts > 0 {
			d.SendTime = arm.WireTime(n.UpdatedAt)
		}
		details = append(details, d)
	}
	writeJSON(w, http.StatusOK, "", map[string]any{
		"context":       map[string]string{"notificationSource": "Microsoft.Insights/TestNotification", "contextType": "Microsoft.Insights/actionGroups"},
		"state":         state,
		"createdTime":   arm.WireTime(ns[0].CreatedAt),
		"completedTime": completedTime(state, ns),
		"actionDetails": details,
	})
	return nil
}

func completedTime(state string, ns []catalog.Notification) string {
	if state != "Complete" {
		return ""
	}
	var last time.Time
	for _, n := range ns {
		if n.UpdatedAt.After(last) {
			last = n.UpdatedAt
		}
	}
	return arm.WireTime(last)
}
