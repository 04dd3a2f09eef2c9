package api

import (
	"fmt"
	"net/http"
	"testing"
)

type targetedErr struct{ target string }

func (e targetedErr) Error() string              { return "The severity 9 is invalid." }
func (e targetedErr) AzureError() (string, Kind) { return "BadRequest", KindInvalid }
func (e targetedErr) ErrorTarget() string        { return e.target }

// A domain validation error that names its field keeps it in the envelope's
// target, also when wrapped; a server-side failure never carries one.
func TestToErrorTarget(t *testing.T) {
	ae := ToError(fmt.Errorf("put rule: %w", targetedErr{target: "properties.severity"}))
	if ae.Status != http.StatusBadRequest || ae.Code != "BadRequest" || ae.Target != "properties.severity" {
		t.Fatalf("got %+v", ae)
	}
	if ae := ToError(targetedErr{}); ae.Target != "" {
		t.Fatalf("empty target: %+v", ae)
	}
}
