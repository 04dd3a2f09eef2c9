package identity

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// TOTP (RFC 6238) with the parameters authenticator apps use: HMAC-SHA1,
// 30-second steps, 6 digits, a 160-bit secret. Verification accepts the
// current step and one step either side (clock drift), and the store
// accepts each step at most once (AcceptTOTPStep), so a used code cannot be
// replayed.

const (
	totpPeriod = 30
	totpDigits = 6
	totpSkew   = 1
)

var totpEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a random 20-byte TOTP secret.
func NewTOTPSecret(rand io.Reader) ([]byte, error) {
	k := make([]byte, 20)
	if _, err := io.ReadFull(rand, k); err != nil {
		return nil, fmt.Errorf("TOTP secret: %w", err)
	}
	return k, nil
}

// TOTPURI returns the otpauth:// enrolment URI for an authenticator app
// (Key Uri Format): otpauth://totp/{issuer}:{account}?secret=...&issuer=...
func TOTPURI(secret []byte, issuer, account string) string {
	v := url.Values{}
	v.Set("secret", totpEncoding.EncodeToString(secret))
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(totpDigits))
	v.Set("period", fmt.Sprint(totpPeriod))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}

// TOTPCode returns the code of secret for time step step (RFC 4226 HOTP).
func TOTPCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, v%1000000)
}

// TOTPStep returns the RFC 6238 time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the time step (within the skew window around now) whose
// code equals code, or 0. Every candidate is compared, in constant time.
func matchTOTP(secret []byte, code string, now time.Time) int64 {
	code = strings.TrimSpace(code)
	if len(code) != totpDigits {
		return 0
	}
	cur := TOTPStep(now)
	var found int64
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		if subtle.ConstantTimeCompare([]byte(TOTPCode(secret, cur+d)), []byte(code)) == 1 {
			found = cur + d
		}
	}
	return found
}

// totpAAD binds a sealed TOTP secret to its user.
func totpAAD(tenantID, objectID string) []byte {
	return []byte("custos totp v1\x00" + strings.ToLower(tenantID) + "\x00" + strings.ToLower(objectID))
}
