package alert

import (
	"encoding/json"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"

	"custos/internal/catalog"
)

// Limits on action groups, as Azure documents them.
const (
	maxGroupShortName = 12
	maxReceivers      = 10 // per receiver type
	maxReceiverName   = 128
)

// actionGroupProperties is the properties object of a
// Microsoft.Insights/actionGroups resource.
type actionGroupProperties struct {
	GroupShortName   string            `json:"groupShortName"`
	Enabled          *bool             `json:"enabled,omitempty"`
	EmailReceivers   []emailReceiver   `json:"emailReceivers"`
	WebhookReceivers []webhookReceiver `json:"webhookReceivers"`

	// Receiver types Custos does not deliver to. They are accepted only
	// when empty, so a template written for Azure never silently loses a
	// receiver.
	SMSReceivers               []json.RawMessage `json:"smsReceivers,omitempty"`
	ITSMReceivers              []json.RawMessage `json:"itsmReceivers,omitempty"`
	AzureAppPushReceivers      []json.RawMessage `json:"azureAppPushReceivers,omitempty"`
	AutomationRunbookReceivers []json.RawMessage `json:"automationRunbookReceivers,omitempty"`
	VoiceReceivers             []json.RawMessage `json:"voiceReceivers,omitempty"`
	LogicAppReceivers          []json.RawMessage `json:"logicAppReceivers,omitempty"`
	AzureFunctionReceivers     []json.RawMessage `json:"azureFunctionReceivers,omitempty"`
	ArmRoleReceivers           []json.RawMessage `json:"armRoleReceivers,omitempty"`
	EventHubReceivers          []json.RawMessage `json:"eventHubReceivers,omitempty"`
}

type emailReceiver struct {
	Name                 string `json:"name"`
	EmailAddress         string `json:"emailAddress"`
	UseCommonAlertSchema bool   `json:"useCommonAlertSchema"`
	Status               string `json:"status,omitempty"` // read-only: "Enabled"
}

type webhookReceiver struct {
	Name                 string `json:"name"`
	ServiceURI           string `json:"serviceUri"`
	UseCommonAlertSchema bool   `json:"useCommonAlertSchema"`
	UseAadAuth           bool   `json:"useAadAuth"`
	ObjectID             string `json:"objectId,omitempty"`
	IdentifierURI        string `json:"identifierUri,omitempty"`
	TenantID             string `json:"tenantId,omitempty"`
	// SigningSecret is the Custos HMAC secret of the receiver, present only
	// in the response to the PUT that created it (shown once). Requests may
	// not set it.
	SigningSecret string `json:"custosSigningSecret,omitempty"`
}

// actionGroup is a validated action group.
type actionGroup struct {
	ID      string
	Name    string
	Enabled bool
	Props   actionGroupProperties
}

func parseActionGroup(res *catalog.AlertResource) (*actionGroup, error) {
	var p actionGroupProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return nil, fmt.Errorf("decode stored action group %s: %w", res.Name, err)
	}
	g := &actionGroup{ID: res.ID(), Name: res.Name, Props: p}
	if err := g.validate(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *actionGroup) validate() error {
	p := &g.Props
	g.Enabled = p.Enabled == nil || *p.Enabled
	if p.GroupShortName == "" || len(p.GroupShortName) > maxGroupShortName {
		return invalid("properties.groupShortName", "The groupShortName is required and can have at most %d characters.", maxGroupShortName)
	}
	for name, l := range map[string]int{
		"smsReceivers": len(p.SMSReceivers), "itsmReceivers": len(p.ITSMReceivers), "azureAppPushReceivers": len(p.AzureAppPushReceivers),
		"automationRunbookReceivers": len(p.AutomationRunbookReceivers), "voiceReceivers": len(p.VoiceReceivers),
		"logicAppReceivers": len(p.LogicAppReceivers), "azureFunctionReceivers": len(p.AzureFunctionReceivers),
		"armRoleReceivers": len(p.ArmRoleReceivers), "eventHubReceivers": len(p.EventHubReceivers),
	} {
		if l > 0 {
			return invalidCode("UnsupportedReceiverType", "properties."+name,
				"Custos delivers to email and webhook receivers only; remove the %s.", name)
		}
	}
	if len(p.EmailReceivers) > maxReceivers || len(p.WebhookReceivers) > maxReceivers {
		return invalid("properties", "An action group can have at most %d receivers of each type.", maxReceivers)
	}
	names := map[string]bool{}
	checkName := func(target, n string) error {
		if n == "" || len(n) > maxReceiverName || strings.ContainsAny(n, "\x00\r\n") {
			return invalid(target, "A receiver needs a name of 1 to %d characters.", maxReceiverName)
		}
		if names[strings.ToLower(n)] {
			return invalid(target, "The receiver name '%s' is used twice in the action group.", truncate(n, 100))
		}
		names[strings.ToLower(n)] = true
		return nil
	}
	for i := range p.EmailReceivers {
		e := &p.EmailReceivers[i]
		t := fmt.Sprintf("properties.emailReceivers[%d]", i)
		if err := checkName(t+".name", e.Name); err != nil {
			return err
		}
		addr, err := mail.ParseAddress(e.EmailAddress)
		if err != nil || addr.Name != "" || addr.Address != e.EmailAddress || len(e.EmailAddress) > 254 {
			return invalid(t+".emailAddress", "The email address '%s' is invalid.", truncate(e.EmailAddress, 100))
		}
		e.Status = "Enabled"
	}
	for i := range p.WebhookReceivers {
		w := &p.WebhookReceivers[i]
		t := fmt.Sprintf("properties.webhookReceivers[%d]", i)
		if err := checkName(t+".name", w.Name); err != nil {
			return err
		}
		if w.SigningSecret != "" {
			return invalid(t+".custosSigningSecret", "The signing secret is generated by the service and cannot be set.")
		}
		u, err := url.Parse(w.ServiceURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(w.ServiceURI) > 2048 {
			return invalid(t+".serviceUri", "The serviceUri '%s' is not an absolute http(s) URL.", truncate(w.ServiceURI, 100))
		}
		if w.UseAadAuth {
			if w.IdentifierURI == "" {
				return invalid(t+".identifierUri", "A secure webhook (useAadAuth) needs the identifierUri of the application to get a token for.")
			}
			if u.User != nil {
				return invalid(t+".serviceUri", "A secure webhook cannot carry basic-auth credentials in its serviceUri.")
			}
		}
	}
	return nil
}

// secretAAD binds a sealed receiver secret to its group and receiver.
func secretAAD(groupID, receiver string) []byte {
	return []byte("custos/alert/webhook-secret\x00" + strings.ToLower(groupID) + "\x00" + receiver)
}

// endpointKey identifies a webhook endpoint for pausing: scheme, host and
// port, as a retry storm is a property of the server, not of one path.
func endpointKey(u *url.URL) string {
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme + "://" + net.JoinHostPort(host, port))
}

// redactURL drops credentials and the query string, which may carry tokens.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}
