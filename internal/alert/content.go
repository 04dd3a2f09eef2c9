package alert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
)

// Customer content of alerting — rule queries and alert payloads (which
// carry the query, dimension values and metric values) — is sealed under
// the key of the workspace it comes from (store.SealWorkspaceContent), so it
// follows the workspace's encryption: a revoked customer-managed key makes
// it unreadable like the workspace's logs, and double encryption applies.
// Activity log alert payloads describe control-plane events, not workspace
// content, and stay in the clear like the activity log itself.

// ContentSealer seals customer content under a workspace's key.
// *store.DB implements it.
type ContentSealer interface {
	SealWorkspaceContent(ctx context.Context, workspaceID string, plaintext, aad []byte) ([]byte, error)
	OpenWorkspaceContent(ctx context.Context, workspaceID string, sealed, aad []byte) ([]byte, error)
}

// sealedContent is sealed content as stored: the workspace (customer ID)
// whose key sealed it and the sealed bytes.
type sealedContent struct {
	WorkspaceID string `json:"workspaceId"`
	Data        []byte `json:"data"`
}

// sealedEnvelope stands in a JSON column for a sealed document.
type sealedEnvelope struct {
	Sealed *sealedContent `json:"custosSealed"`
}

func stateAAD(ruleID string) []byte {
	return []byte("custos/alert-rule-state/v1\x00" + strings.ToLower(ruleID))
}

// seriesRef names a series in the catalog's alerts table: a hash of its
// key, so that dimension values (customer content) stay sealed.
func seriesRef(key string) string {
	h := sha256.Sum256([]byte("custos/alert-series/v1\x00" + key))
	return hex.EncodeToString(h[:16])
}

// sealState seals a rule's state document (it holds the dimension values
// of its series) under the key of the rule's first scope.
func (s *Service) sealState(ctx context.Context, r *rule, plain []byte) (json.RawMessage, error) {
	if s.content == nil || len(r.Props.Scopes) == 0 {
		return plain, nil
	}
	ws, err := s.workspaceOfScope(ctx, r.Props.Scopes[0])
	if err != nil {
		return nil, fmt.Errorf("seal rule state: %w", err)
	}
	sc, err := s.seal(ctx, ws, plain, stateAAD(r.ID))
	if err != nil {
		return nil, err
	}
	return json.Marshal(sealedEnvelope{Sealed: sc})
}

// openState returns a stored rule state in the clear.
func (s *Service) openState(ctx context.Context, ruleID string, raw json.RawMessage) ([]byte, error) {
	if !bytes.HasPrefix(raw, []byte(`{"custosSealed":`)) {
		return raw, nil
	}
	var env sealedEnvelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Sealed == nil {
		return nil, fmt.Errorf("decode sealed rule state: %v", err)
	}
	return s.open(ctx, env.Sealed, stateAAD(ruleID))
}

// querySecretName is the alert_secrets name of a rule's sealed query.
const querySecretName = "query"

func queryAAD(ruleID string) []byte {
	return []byte("custos/alert-rule-query/v1\x00" + strings.ToLower(ruleID))
}

func payloadAAD(alertID string) []byte {
	return []byte("custos/alert-payload/v1\x00" + strings.ToLower(alertID))
}

// seal seals plaintext for a workspace; it returns nil, nil when the
// service has no content sealer (content stays in the clear).
func (s *Service) seal(ctx context.Context, workspaceID string, plaintext, aad []byte) (*sealedContent, error) {
	if s.content == nil {
		return nil, nil
	}
	b, err := s.content.SealWorkspaceContent(ctx, workspaceID, plaintext, aad)
	if err != nil {
		return nil, fmt.Errorf("seal alert content: %w", err)
	}
	return &sealedContent{WorkspaceID: workspaceID, Data: b}, nil
}

func (s *Service) open(ctx context.Context, sc *sealedContent, aad []byte) ([]byte, error) {
	if s.content == nil {
		return nil, errors.New("alert content is sealed but no content sealer is configured")
	}
	b, err := s.content.OpenWorkspaceContent(ctx, sc.WorkspaceID, sc.Data, aad)
	if err != nil {
		return nil, fmt.Errorf("open alert content: %w", err)
	}
	return b, nil
}

// sealPayload seals a notification payload of alert alertID under the
// workspace's key, as a JSON envelope; without a content sealer (or for
// activity log alerts, workspaceID "") it returns the payload unchanged.
func (s *Service) sealPayload(ctx context.Context, workspaceID string, payload []byte, alertID string) (json.RawMessage, error) {
	if workspaceID == "" {
		return payload, nil
	}
	sc, err := s.seal(ctx, workspaceID, payload, payloadAAD(alertID))
	if err != nil || sc == nil {
		return payload, err
	}
	return json.Marshal(sealedEnvelope{Sealed: sc})
}

// openPayload returns a notification payload in the clear.
func (s *Service) openPayload(ctx context.Context, raw json.RawMessage, alertID string) ([]byte, error) {
	if !bytes.HasPrefix(raw, []byte(`{"custosSealed":`)) {
		return raw, nil
	}
	var env sealedEnvelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Sealed == nil {
		return nil, fmt.Errorf("decode sealed payload: %v", err)
	}
	return s.open(ctx, env.Sealed, payloadAAD(alertID))
}

// docPayload returns the payload of a stored alert document, opening it
// when it is sealed.
func (s *Service) docPayload(ctx context.Context, d *alertDoc, alertID string) (CommonAlertSchema, error) {
	if d.SealedPayload == nil {
		return d.Payload, nil
	}
	b, err := s.open(ctx, d.SealedPayload, payloadAAD(alertID))
	if err != nil {
		return CommonAlertSchema{}, err
	}
	var p CommonAlertSchema
	if err := json.Unmarshal(b, &p); err != nil {
		return CommonAlertSchema{}, fmt.Errorf("decode alert payload: %w", err)
	}
	return p, nil
}

// workspaceOfScope returns the customer ID of a workspace scope.
func (s *Service) workspaceOfScope(ctx context.Context, scope string) (string, error) {
	e, err := s.scopeEntry(ctx, scope)
	if err != nil {
		return "", err
	}
	return e.ws.CustomerID, nil
}

// sealRuleQuery moves a log search rule's query out of its properties into
// a sealed secret. It returns the properties to store and the secrets
// update (nil when nothing is sealed).
func (s *Service) sealRuleQuery(ctx context.Context, ruleID string, p ruleProperties) (ruleProperties, *catalog.AlertSecretsUpdate, error) {
	if s.content == nil || p.Criteria == nil || len(p.Criteria.AllOf) == 0 || len(p.Scopes) == 0 {
		return p, nil, nil
	}
	ws, err := s.workspaceOfScope(ctx, p.Scopes[0])
	if err != nil {
		return p, nil, err
	}
	sc, err := s.seal(ctx, ws, []byte(p.Criteria.AllOf[0].Query), queryAAD(ruleID))
	if err != nil {
		return p, nil, err
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return p, nil, fmt.Errorf("encode sealed query: %w", err)
	}
	crit := append([]criterion(nil), p.Criteria.AllOf...)
	crit[0].Query = ""
	p.Criteria = &ruleCriteria{AllOf: crit}
	return p, &catalog.AlertSecretsUpdate{Replace: map[string][]byte{querySecretName: b}}, nil
}

// openStoredRule returns res with its sealed query (if any) back in its
// properties.
func (s *Service) openStoredRule(ctx context.Context, res *catalog.AlertResource) (catalog.AlertResource, error) {
	out := *res
	if res.Type != catalog.TypeScheduledQueryRule {
		return out, nil
	}
	raw, err := s.cat.AlertSecret(ctx, res.ID(), querySecretName)
	if errors.Is(err, catalog.ErrNotFound) {
		return out, nil // stored in the clear (no content sealer, or not migrated yet)
	}
	if err != nil {
		return out, err
	}
	var sc sealedContent
	if err := json.Unmarshal(raw, &sc); err != nil {
		return out, fmt.Errorf("decode sealed query: %w", err)
	}
	q, err := s.open(ctx, &sc, queryAAD(res.ID()))
	if err != nil {
		return out, err
	}
	var p ruleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return out, fmt.Errorf("decode stored rule: %w", err)
	}
	if p.Criteria != nil && len(p.Criteria.AllOf) > 0 {
		crit := append([]criterion(nil), p.Criteria.AllOf...)
		crit[0].Query = string(q)
		p.Criteria = &ruleCriteria{AllOf: crit}
	}
	if out.Properties, err = json.Marshal(p); err != nil {
		return out, fmt.Errorf("encode rule: %w", err)
	}
	return out, nil
}

// unavailableQuery stands in for a query that cannot be opened, so that the
// rule is still scheduled and each evaluation fails visibly.
const unavailableQuery = "print unavailable = 1"

// loadRule parses a stored rule with its sealed content opened. When the
// content cannot be opened (the workspace's key is revoked), the rule is
// returned with contentErr set: it stays scheduled and every evaluation
// fails with that error until the key is back.
func (s *Service) loadRule(ctx context.Context, res *catalog.AlertResource) (*rule, error) {
	opened, err := s.openStoredRule(ctx, res)
	if err == nil {
		return parseRule(&opened)
	}
	var p ruleProperties
	if jerr := json.Unmarshal(res.Properties, &p); jerr != nil || p.Criteria == nil || len(p.Criteria.AllOf) == 0 {
		return nil, err
	}
	crit := append([]criterion(nil), p.Criteria.AllOf...)
	crit[0].Query = unavailableQuery
	p.Criteria = &ruleCriteria{AllOf: crit}
	stand := *res
	if stand.Properties, err = json.Marshal(p); err != nil {
		return nil, err
	}
	r, perr := parseRule(&stand)
	if perr != nil {
		return nil, perr
	}
	r.contentErr = &Error{Code: "RuleContentUnavailable", Kind: api.KindUnavailable, base: ErrForbidden,
		Message: "The rule's query is sealed under its workspace's key, which is unavailable: " + err.Error()}
	return r, nil
}

// sealLegacyContent seals rule queries and alert payloads that an older
// Custos stored in the clear. It runs at Start and is idempotent.
func (s *Service) sealLegacyContent(ctx context.Context) error {
	if s.content == nil {
		return nil
	}
	rules, err := s.cat.AllAlertResources(ctx, catalog.TypeScheduledQueryRule)
	if err != nil {
		return err
	}
	sealedRules := 0
	for i := range rules {
		res := &rules[i]
		var p ruleProperties
		if err := json.Unmarshal(res.Properties, &p); err != nil || p.Criteria == nil || len(p.Criteria.AllOf) == 0 || p.Criteria.AllOf[0].Query == "" {
			continue
		}
		np, upd, err := s.sealRuleQuery(ctx, res.ID(), p)
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "seal stored rule query", slog.String("rule_id", res.ID()), slog.Any("error", err))
			continue
		}
		props, err := json.Marshal(np)
		if err != nil {
			return fmt.Errorf("encode rule: %w", err)
		}
		if err := s.cat.SealAlertResourceContent(ctx, res.ID(), props, upd.Replace); err != nil {
			return err
		}
		sealedRules++
	}
	states := 0
	for _, typ := range []string{catalog.TypeScheduledQueryRule, catalog.TypeMetricAlert} {
		all, err := s.cat.AllAlertResources(ctx, typ)
		if err != nil {
			return err
		}
		for i := range all {
			raw, err := s.cat.RuleState(ctx, all[i].ID())
			if err != nil {
				return err
			}
			if raw == nil || bytes.HasPrefix(raw, []byte(`{"custosSealed":`)) {
				continue
			}
			r, err := s.loadRule(ctx, &all[i])
			if err != nil {
				continue
			}
			sealed, err := s.sealState(ctx, r, raw)
			if err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "seal stored rule state", slog.String("rule_id", r.ID), slog.Any("error", err))
				continue
			}
			if err := s.cat.CommitEvaluation(ctx, catalog.EvaluationCommit{RuleID: r.ID, PrevState: raw, State: sealed}); err != nil {
				return err
			}
			states++
		}
	}
	docs, notes := 0, 0
	for round := 0; round < 1000; round++ {
		as, err := s.cat.UnsealedAlertDocs(ctx, 200)
		if err != nil {
			return err
		}
		progress := false
		for _, a := range as {
			var d alertDoc
			if err := json.Unmarshal(a.Doc, &d); err != nil {
				continue
			}
			ws := s.payloadWorkspace(ctx, &d.Payload)
			if ws == "" {
				continue
			}
			b, err := json.Marshal(d.Payload)
			if err != nil {
				return err
			}
			if d.SealedPayload, err = s.seal(ctx, ws, b, payloadAAD(a.ID)); err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "seal stored alert payload", slog.String("alert_id", a.ID), slog.Any("error", err))
				continue
			}
			d.Payload = CommonAlertSchema{}
			doc, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := s.cat.SetAlertDoc(ctx, a.ID, doc, seriesRef(a.SeriesKey)); err != nil {
				return err
			}
			docs++
			progress = true
		}
		if !progress {
			break
		}
	}
	for round := 0; round < 1000; round++ {
		ns, err := s.cat.UnsealedNotifications(ctx, 200)
		if err != nil {
			return err
		}
		progress := false
		for _, n := range ns {
			var p CommonAlertSchema
			if err := json.Unmarshal(n.Payload, &p); err != nil {
				continue
			}
			ws := s.payloadWorkspace(ctx, &p)
			if ws == "" {
				continue
			}
			sealed, err := s.sealPayload(ctx, ws, n.Payload, n.AlertID)
			if err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "seal stored notification payload", slog.String("notification_id", n.ID), slog.Any("error", err))
				continue
			}
			if err := s.cat.SetNotificationPayload(ctx, n.ID, sealed); err != nil {
				return err
			}
			notes++
			progress = true
		}
		if !progress {
			break
		}
	}
	if sealedRules+states+docs+notes > 0 {
		s.log.LogAttrs(ctx, slog.LevelInfo, "sealed alert content stored in the clear by an older version",
			slog.Int("rules", sealedRules), slog.Int("rule_states", states), slog.Int("alerts", docs), slog.Int("notifications", notes))
	}
	return nil
}

// payloadWorkspace is the customer ID of the workspace an alert payload
// came from (its first target), or "" when that is not a workspace.
func (s *Service) payloadWorkspace(ctx context.Context, p *CommonAlertSchema) string {
	for _, t := range p.Data.Essentials.AlertTargetIDs {
		if _, _, _, ok := catalog.ParseWorkspaceResourceID(t); ok {
			if ws, err := s.workspaceOfScope(ctx, t); err == nil {
				return ws
			}
		}
	}
	return ""
}
