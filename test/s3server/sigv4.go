package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// sigv4Verifier refuses every request that is not signed with AWS Signature
// Version 4 (Authorization header form) by the one configured key pair. It
// is written from the AWS specification independently of Custos's signer
// (internal/export/sigv4.go), so the export tests prove that Custos signs
// correctly rather than that two copies of the same code agree.
type sigv4Verifier struct {
	accessKey, secretKey, region string
	maxSkew                      time.Duration
	now                          func() time.Time
	next                         http.Handler
}

// s3Error answers as S3 does: an XML error document.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

func (v *sigv4Verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code, msg := v.verify(r); code != "" {
		s3Error(w, http.StatusForbidden, code, msg)
		return
	}
	v.next.ServeHTTP(w, r)
}

// verify returns an S3 error code and message, or "" when the request is
// correctly signed. It may replace r.Body (after reading it to check the
// payload hash).
func (v *sigv4Verifier) verify(r *http.Request) (code, msg string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "AccessDenied", "request is not signed with AWS4-HMAC-SHA256"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return "AuthorizationHeaderMalformed", "bad field " + f
		}
		fields[k] = val
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[3] != "s3" || cred[4] != "aws4_request" {
		return "AuthorizationHeaderMalformed", "bad credential scope"
	}
	if cred[0] != v.accessKey {
		return "InvalidAccessKeyId", "unknown access key"
	}
	if cred[2] != v.region {
		return "AuthorizationHeaderMalformed", "region " + cred[2] + " is wrong; expecting " + v.region
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return "AccessDenied", "missing or bad X-Amz-Date"
	}
	if d := v.now().Sub(t); d > v.maxSkew || d < -v.maxSkew {
		return "RequestTimeTooSkewed", "request time too far from the server time"
	}
	if cred[1] != amzDate[:8] {
		return "SignatureDoesNotMatch", "credential date differs from X-Amz-Date"
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) || !contains(signed, "host") || !contains(signed, "x-amz-date") || !contains(signed, "x-amz-content-sha256") {
		return "AccessDenied", "SignedHeaders must be sorted and include host, x-amz-date and x-amz-content-sha256"
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload != "UNSIGNED-PAYLOAD" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return "IncompleteBody", err.Error()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != payload {
			return "XAmzContentSHA256Mismatch", "the payload hash does not match X-Amz-Content-Sha256"
		}
	}
	// Canonical request (AWS SigV4 for S3: the path is URI-encoded once).
	var cr strings.Builder
	cr.WriteString(r.Method + "\n")
	cr.WriteString(awsEncode(r.URL.Path, true) + "\n")
	type kv struct{ k, v string }
	var qs []kv
	for k, vals := range r.URL.Query() {
		for _, val := range vals {
			qs = append(qs, kv{awsEncode(k, false), awsEncode(val, false)})
		}
	}
	sort.Slice(qs, func(i, j int) bool {
		if qs[i].k != qs[j].k {
			return qs[i].k < qs[j].k
		}
		return qs[i].v < qs[j].v
	})
	for i, q := range qs {
		if i > 0 {
			cr.WriteByte('&')
		}
		cr.WriteString(q.k + "=" + q.v)
	}
	cr.WriteByte('\n')
	for _, h := range signed {
		var val string
		if h == "host" {
			val = r.Host
		} else {
			val = strings.Join(r.Header.Values(h), ",")
		}
		cr.WriteString(h + ":" + strings.Join(strings.Fields(val), " ") + "\n")
	}
	cr.WriteString("\n" + strings.Join(signed, ";") + "\n" + payload)
	crHash := sha256.Sum256([]byte(cr.String()))
	scope := strings.Join(cred[1:], "/")
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	key := []byte("AWS4" + v.secretKey)
	for _, part := range cred[1:] {
		key = mac(key, part)
	}
	want := hex.EncodeToString(mac(key, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided"
	}
	return "", ""
}

func mac(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// awsEncode percent-encodes every byte but the unreserved characters
// A-Z a-z 0-9 - _ . ~ (and '/' in paths), upper-case hex.
func awsEncode(s string, path bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || path && c == '/' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
