package alert

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
)

// groupTypeWire is how Azure spells the type of an action group.
const groupTypeWire = "Microsoft.Insights/ActionGroups"

// signingSecretBytes is the size of a webhook receiver's HMAC secret.
const signingSecretBytes = 32

type groupWire struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Location   string             `json:"location"`
	Tags       map[string]string  `json:"tags"`
	Etag       string             `json:"etag,omitempty"`
	Properties groupPropertiesOut `json:"properties"`
	SystemData *systemData        `json:"systemData,omitempty"`
}

// groupPropertiesOut adds the read-only Custos notifier application (the
// appid of secure webhook tokens) to the properties.
type groupPropertiesOut struct {
	actionGroupProperties
	NotifierAppID string `json:"custosNotifierAppId,omitempty"`
}

type groupRequest struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		actionGroupProperties
		NotifierAppID *string `json:"custosNotifierAppId"`
	} `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	Etag       *string         `json:"etag"`
	Kind       *string         `json:"kind"`
	Identity   json.RawMessage `json:"identity"`
	SystemData json.RawMessage `json:"systemData"`
}

func toGroupWire(res *catalog.AlertResource, secrets map[string]string) (groupWire, error) {
	var p actionGroupProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return groupWire{}, fmt.Errorf("decode stored action group: %w", err)
	}
	if p.EmailReceivers == nil {
		p.EmailReceivers = []emailReceiver{}
	}
	if p.WebhookReceivers == nil {
		p.WebhookReceivers = []webhookReceiver{}
	}
	for i := range p.WebhookReceivers {
		p.WebhookReceivers[i].SigningSecret = secrets[p.WebhookReceivers[i].Name]
	}
	out := groupWire{ID: res.ID(), Name: res.Name, Type: groupTypeWire, Location: res.Location, Tags: res.Tags, Etag: res.ETag,
		Properties: groupPropertiesOut{actionGroupProperties: p}, SystemData: toSystemData(res.Audit)}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	if len(res.Identity) > 0 {
		var id ruleIdentity
		if err := json.Unmarshal(res.Identity, &id); err == nil {
			out.Properties.NotifierAppID = id.AppID
		}
	}
	return out, nil
}

// putGroup creates or replaces an action group. Each new webhook receiver
// gets a generated HMAC signing secret, stored sealed under the platform key
// and returned once, in this response (custosSigningSecret).
func (s *Service) putGroup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req groupRequest
	if err := api.DecodeJSON(r, &req, s.opts.MaxBodyBytes); err != nil {
		return err
	}
	if req.Properties == nil {
		return invalid("properties", "The properties of the action group are required.")
	}
	sub, rg, name := r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("actionGroupName")
	g := &actionGroup{Props: req.Properties.actionGroupProperties}
	if err := g.validate(); err != nil {
		return err
	}
	if g.Props.Enabled == nil {
		t := true
		g.Props.Enabled = &t
	}
	props, err := json.Marshal(g.Props)
	if err != nil {
		return fmt.Errorf("encode action group: %w", err)
	}
	res := catalog.AlertResource{Type: catalog.TypeActionGroup, SubscriptionID: sub, ResourceGroup: rg, Name: name,
		Location: req.Location, Tags: req.Tags, Properties: props}
	if res.Location == "" {
		res.Location = "Global"
	}
	id := res.ID()

	// Secure webhooks need a notifier application to issue tokens to.
	secure := false
	for _, wr := range g.Props.WebhookReceivers {
		secure = secure || wr.UseAadAuth
	}
	old, err := s.cat.AlertResource(ctx, catalog.TypeActionGroup, sub, rg, name)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	if err == nil && len(old.Identity) > 0 {
		res.Identity = old.Identity
	} else if secure {
		ni, err := s.newNotifierApp(ctx, sub, "Custos alert notifications ("+name+")")
		if err != nil {
			return err
		}
		if res.Identity, err = json.Marshal(ni); err != nil {
			return fmt.Errorf("encode identity: %w", err)
		}
	}

	plain := map[string]string{}
	upd := &catalog.AlertSecretsUpdate{Create: map[string][]byte{}}
	for _, wr := range g.Props.WebhookReceivers {
		secret, err := newSigningSecret(s.rand)
		if err != nil {
			return err
		}
		sealed, err := s.opts.Sealer.Seal([]byte(secret), secretAAD(id, wr.Name))
		if err != nil {
			return fmt.Errorf("seal signing secret: %w", err)
		}
		plain[wr.Name] = secret
		upd.Create[wr.Name] = sealed
	}
	saved, created, inserted, err := s.cat.PutAlertResource(ctx, res, upd, precondition(r), actor(r))
	if err != nil {
		return err
	}
	shown := map[string]string{}
	for _, n := range inserted {
		shown[n] = plain[n]
	}
	gw, err := toGroupWire(&saved, shown)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writePut(w, created, saved.ETag, gw)
	return nil
}

// newSigningSecret returns 32 random bytes, base64url-encoded.
func newSigningSecret(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, signingSecretBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	_, deleted, err := s.cat.DeleteAlertResource(r.Context(), catalog.TypeActionGroup, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("actionGroupName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
