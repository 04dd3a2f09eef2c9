package identity

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"custos/internal/enroll"
)

// Enrollment tokens.
//
// An enrollment token is 32 bytes from crypto/rand written as
// enroll.TokenPrefix + base64url (48 characters in all). Only a hash is
// stored:
//
//	Hash = 0x01 || SHA-256("custos enrollment token v1" || 0x00 || token)
//
// As for client secrets, an unsalted fast hash suffices for a 256-bit random
// value. The token is one-time and expiring: the catalog consumes it in the
// same transaction that creates the machine.

const enrollmentHashContext = "custos enrollment token v1\x00"

// Limits of enrollment tokens' lifetimes.
const (
	DefaultEnrollmentTokenLifetime = time.Hour
	MinEnrollmentTokenLifetime     = time.Minute
	MaxEnrollmentTokenLifetime     = 7 * 24 * time.Hour
)

// NewEnrollmentToken returns a new enrollment token and the hash to store.
// The token itself is shown once and never stored.
func NewEnrollmentToken(r io.Reader) (token string, hash []byte, err error) {
	var raw [32]byte
	if _, err := fullRead(r, raw[:]); err != nil {
		return "", nil, fmt.Errorf("generate enrollment token: %w", err)
	}
	token = enroll.TokenPrefix + b64.EncodeToString(raw[:])
	clear(raw[:])
	return token, HashEnrollmentToken(token), nil
}

// HashEnrollmentToken returns the stored hash of an enrollment token.
func HashEnrollmentToken(token string) []byte {
	h := sha256.New()
	h.Write([]byte(enrollmentHashContext))
	h.Write([]byte(token))
	return h.Sum([]byte{secretHashVersion})
}

var (
	// machineNameRE: Azure Arc machine names (letters, digits, '-', '_', '.').
	machineNameRE = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,63}$`)
	tokenRE       = regexp.MustCompile(`^` + regexp.QuoteMeta(enroll.TokenPrefix) + `[A-Za-z0-9_-]{43}$`)
)

// ValidMachineName reports whether name is a valid machine resource name: 1
// to 64 letters, digits, '-', '_' and '.', starting with a letter or digit.
func ValidMachineName(name string) bool {
	return machineNameRE.MatchString(name) && !strings.HasSuffix(name, ".")
}

// enrollError is an enrollment failure in the Azure error envelope.
type enrollError struct {
	status int
	code   string
	msg    string
}

func (e *enrollError) Error() string { return e.code + ": " + e.msg }

func badEnroll(format string, args ...any) *enrollError {
	return &enrollError{status: http.StatusBadRequest, code: "InvalidRequestContent", msg: fmt.Sprintf(format, args...)}
}

// parseEnrollRequest decodes and checks an enrollment request body: strict
// JSON, a well-formed token, a valid machine name, bounded printable
// metadata and a supported public key. It never panics on any input.
func parseEnrollRequest(contentType string, body []byte) (enroll.Request, crypto.PublicKey, *enrollError) {
	var req enroll.Request
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return req, nil, &enrollError{status: http.StatusUnsupportedMediaType, code: "UnsupportedMediaType",
			msg: "The enrollment request must be application/json."}
	}
	if len(body) > enroll.MaxRequestBytes {
		return req, nil, &enrollError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge",
			msg: fmt.Sprintf("The enrollment request exceeds %d bytes.", enroll.MaxRequestBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, nil, badEnroll("The enrollment request is not valid JSON: %s", sanitize(err.Error()))
	}
	if dec.More() {
		return req, nil, badEnroll("The enrollment request has data after the JSON object.")
	}
	if !tokenRE.MatchString(req.EnrollmentToken) {
		return req, nil, &enrollError{status: http.StatusUnauthorized, code: "InvalidEnrollmentToken",
			msg: "The enrollment token is invalid, expired or already used."}
	}
	for _, f := range []struct{ name, v string }{{"hostname", req.Hostname}, {"osType", req.OSType},
		{"osName", req.OSName}, {"osVersion", req.OSVersion}, {"agentVersion", req.AgentVersion}} {
		if len(f.v) > 255 || strings.IndexFunc(f.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return req, nil, badEnroll("The property '%s' must be at most 255 printable characters.", f.name)
		}
	}
	if req.Name == "" {
		req.Name = enroll.ShortHostname(req.Hostname)
	}
	if !ValidMachineName(req.Name) {
		return req, nil, &enrollError{status: http.StatusBadRequest, code: "InvalidResourceName",
			msg: fmt.Sprintf("The machine name '%s' is invalid. It must be 1 to 64 letters, digits, '-', '_' and '.', start with a letter or digit and not end with '.'.", sanitize(req.Name))}
	}
	pub, err := req.PublicKey.PublicKey()
	if err != nil {
		return req, nil, badEnroll("The property 'publicKey' must be an EC P-256 or RSA (2048 to 4096 bits) JSON Web Key: %s", sanitize(err.Error()))
	}
	return req, pub, nil
}

// serveEnroll is POST /enroll: a machine presents a one-time enrollment token
// and its public key and receives its machine resource and system-assigned
// managed identity.
func (s *TokenService) serveEnroll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeEnrollError(w, &enrollError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed",
			msg: "The enrollment endpoint only accepts POST."})
		return
	}
	now := s.now()
	addrKey := addressKey(r.RemoteAddr)
	if ok, wait := s.addrLimit.allow(addrKey, now); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		writeEnrollError(w, &enrollError{status: http.StatusTooManyRequests, code: "TooManyRequests",
			msg: "Too many failed enrollment attempts from this address. Retry after the time in the Retry-After header."})
		return
	}
	fail := func(e *enrollError, reason string) {
		s.addrLimit.fail(addrKey, now)
		s.log.LogAttrs(ctx, slog.LevelWarn, "enrollment rejected", slog.String("reason", reason),
			slog.String("remote_addr", r.RemoteAddr), slog.String("code", e.code))
		writeEnrollError(w, e)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, enroll.MaxRequestBytes))
	if err != nil {
		fail(&enrollError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge",
			msg: fmt.Sprintf("The enrollment request exceeds %d bytes.", enroll.MaxRequestBytes)}, "body too large")
		return
	}
	req, pub, eerr := parseEnrollRequest(r.Header.Get("Content-Type"), body)
	clear(body)
	if eerr != nil {
		fail(eerr, "bad request")
		return
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		fail(badEnroll("The public key cannot be encoded."), "bad key")
		return
	}
	kid, err := enroll.Thumbprint(pub)
	if err != nil {
		fail(badEnroll("The public key is not supported."), "bad key")
		return
	}
	objectID, err1 := newGUID(s.rand)
	appID, err2 := newGUID(s.rand)
	keyID, err3 := newGUID(s.rand)
	if err := errors.Join(err1, err2, err3); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "enrollment failed", slog.Any("error", err))
		writeEnrollError(w, &enrollError{status: http.StatusInternalServerError, code: "InternalServerError", msg: "The enrollment failed."})
		return
	}
	m, err := s.store.EnrollMachine(ctx, MachineEnrollment{
		TokenHash: HashEnrollmentToken(req.EnrollmentToken), Name: req.Name, Hostname: req.Hostname,
		OSType: req.OSType, OSName: req.OSName, OSVersion: req.OSVersion, AgentVersion: req.AgentVersion,
		ObjectID: objectID, AppID: appID,
		Key: KeyCredential{KeyID: keyID, DisplayName: "machine key " + kid, PublicKey: der, NotBefore: now.UTC()},
	})
	switch {
	case errors.Is(err, ErrEnrollmentTokenInvalid):
		fail(&enrollError{status: http.StatusUnauthorized, code: "InvalidEnrollmentToken",
			msg: "The enrollment token is invalid, expired or already used."}, "enrollment token refused")
		return
	case errors.Is(err, ErrConflict):
		writeEnrollError(w, &enrollError{status: http.StatusConflict, code: "MachineExists",
			msg: fmt.Sprintf("A machine named '%s' already exists in the token's resource group. Delete it first, or enroll under another name; the enrollment token was not used.", req.Name)})
		return
	case errors.Is(err, ErrInvalidArgument):
		writeEnrollError(w, badEnroll("%s", sanitize(err.Error())))
		return
	case err != nil:
		s.log.LogAttrs(ctx, slog.LevelError, "enrollment failed", slog.Any("error", err))
		writeEnrollError(w, &enrollError{status: http.StatusInternalServerError, code: "InternalServerError", msg: "The enrollment failed."})
		return
	}
	base := s.baseFor(r)
	s.log.LogAttrs(ctx, slog.LevelInfo, "machine enrolled", slog.String("machine_id", m.ResourceID),
		slog.String("object_id", m.ObjectID), slog.String("app_id", m.AppID), slog.String("remote_addr", r.RemoteAddr))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, enroll.Response{
		ID: m.ResourceID, Name: m.Name, Location: m.Location, TenantID: m.TenantID, ClientID: m.AppID,
		PrincipalID: m.ObjectID, KeyID: kid, AuthorityHost: base,
		TokenEndpoint:         base + "/" + m.TenantID + "/oauth2/v2.0/token",
		ConfigurationEndpoint: base + m.ResourceID + enroll.ConfigurationSuffix + "?api-version=" + enroll.ConfigurationAPIVersion,
	})
}

func writeEnrollError(w http.ResponseWriter, e *enrollError) {
	w.Header().Set("x-ms-error-code", e.code)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, map[string]any{"error": map[string]string{"code": e.code, "message": e.msg}})
}
