package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxAuditLineBytes bounds one audit event line; longer lines are refused
// (the API server's own limit for an event is in this order).
const MaxAuditLineBytes = 1 << 20

// auditEvent is the part of an audit.k8s.io/v1 Event the KubeAudit table keeps.
type auditEvent struct {
	Kind                     string          `json:"kind"`
	APIVersion               string          `json:"apiVersion"`
	Level                    string          `json:"level"`
	AuditID                  string          `json:"auditID"`
	Stage                    string          `json:"stage"`
	RequestURI               string          `json:"requestURI"`
	Verb                     string          `json:"verb"`
	User                     json.RawMessage `json:"user"`
	SourceIPs                json.RawMessage `json:"sourceIPs"`
	UserAgent                string          `json:"userAgent"`
	ObjectRef                json.RawMessage `json:"objectRef"`
	ResponseStatus           json.RawMessage `json:"responseStatus"`
	RequestObject            json.RawMessage `json:"requestObject"`
	ResponseObject           json.RawMessage `json:"responseObject"`
	RequestReceivedTimestamp string          `json:"requestReceivedTimestamp"`
	StageTimestamp           string          `json:"stageTimestamp"`
	Annotations              json.RawMessage `json:"annotations"`
}

// AuditRow is one KubeAudit record (the columns of Azure's ArcK8sAudit).
type AuditRow struct {
	TimeGenerated       string          `json:"TimeGenerated"`
	Annotations         json.RawMessage `json:"Annotations,omitempty"`
	AuditID             string          `json:"AuditId"`
	Level               string          `json:"Level"`
	ObjectRef           json.RawMessage `json:"ObjectRef,omitempty"`
	PodName             string          `json:"PodName,omitempty"`
	RequestObject       json.RawMessage `json:"RequestObject,omitempty"`
	RequestReceivedTime string          `json:"RequestReceivedTime,omitempty"`
	RequestURI          string          `json:"RequestUri"`
	ResponseObject      json.RawMessage `json:"ResponseObject,omitempty"`
	ResponseStatus      json.RawMessage `json:"ResponseStatus,omitempty"`
	SourceIPs           json.RawMessage `json:"SourceIps,omitempty"`
	SourceSystem        string          `json:"SourceSystem"`
	Stage               string          `json:"Stage"`
	StageReceivedTime   string          `json:"StageReceivedTime,omitempty"`
	User                json.RawMessage `json:"User,omitempty"`
	UserAgent           string          `json:"UserAgent"`
	Verb                string          `json:"Verb"`
	ResourceID          string          `json:"_ResourceId,omitempty"`
}

// Errors of ParseAuditLine.
var (
	ErrNotAuditEvent = errors.New("kube: not an audit.k8s.io event")
	ErrAuditTooLarge = errors.New("kube: audit line too large")
)

// ParseAuditLine turns one line of an API server audit log (JSON lines,
// --audit-log-format=json) into a KubeAudit row. now is used when the event
// carries no stage timestamp. It never panics on any input.
func ParseAuditLine(line []byte, podName, resourceID string, now time.Time) (AuditRow, error) {
	line = bytes.TrimSpace(line)
	if len(line) > MaxAuditLineBytes {
		return AuditRow{}, ErrAuditTooLarge
	}
	var ev auditEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		return AuditRow{}, fmt.Errorf("%w: %v", ErrNotAuditEvent, err)
	}
	if ev.Kind != "Event" || (ev.APIVersion != "audit.k8s.io/v1" && ev.APIVersion != "audit.k8s.io/v1beta1") || ev.AuditID == "" {
		return AuditRow{}, ErrNotAuditEvent
	}
	stage := rfc3339(ev.StageTimestamp)
	tg := stage
	if tg == "" {
		tg = now.UTC().Format(time.RFC3339Nano)
	}
	return AuditRow{TimeGenerated: tg, Annotations: obj(ev.Annotations), AuditID: ev.AuditID, Level: ev.Level, ObjectRef: obj(ev.ObjectRef),
		PodName: podName, RequestObject: obj(ev.RequestObject), RequestReceivedTime: rfc3339(ev.RequestReceivedTimestamp), RequestURI: ev.RequestURI,
		ResponseObject: obj(ev.ResponseObject), ResponseStatus: obj(ev.ResponseStatus), SourceIPs: obj(ev.SourceIPs), SourceSystem: "Containers",
		Stage: ev.Stage, StageReceivedTime: stage, User: obj(ev.User), UserAgent: ev.UserAgent, Verb: ev.Verb, ResourceID: resourceID}, nil
}

// obj keeps a JSON value unless it is absent or null.
func obj(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return m
}

// rfc3339 normalizes a timestamp to RFC 3339 UTC, or "" when unparseable.
func rfc3339(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
