package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// maxTokenBytes bounds an accepted access token. Ours are well under 2 KiB.
const maxTokenBytes = 8192

// algES256 is the only signing algorithm Custos issues and accepts.
const algES256 = "ES256"

// jwtHeader is the JOSE header of tokens Custos issues.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid"`
	// Crit must be absent: Custos understands no critical extensions.
	Crit json.RawMessage `json:"crit,omitempty"`
}

// Claims are the JWT claims of a Custos access token, modelled on Entra ID v2
// app-only tokens.
type Claims struct {
	Audience       string   `json:"aud"`
	Issuer         string   `json:"iss"`
	IssuedAt       int64    `json:"iat"`
	NotBefore      int64    `json:"nbf"`
	Expires        int64    `json:"exp"`
	AppID          string   `json:"appid,omitempty"`
	AppDisplayName string   `json:"app_displayname,omitempty"`
	AuthorizedApp  string   `json:"azp,omitempty"`
	AzpACR         string   `json:"azpacr,omitempty"` // "1": client secret
	IDType         string   `json:"idtyp,omitempty"`  // "app" or "user"
	ObjectID       string   `json:"oid"`
	Subject        string   `json:"sub"`
	TenantID       string   `json:"tid"`
	TokenID        string   `json:"jti"`
	Version        string   `json:"ver"`
	Groups         []string `json:"groups,omitempty"`
	ManagedIDRes   string   `json:"xms_mirid,omitempty"` // set for managed identities
	// User tokens (idtyp "user") also carry these.
	UPN         string   `json:"upn,omitempty"`
	Name        string   `json:"name,omitempty"`
	Scope       string   `json:"scp,omitempty"`
	AuthMethods []string `json:"amr,omitempty"`
}

var b64 = base64.RawURLEncoding

// signJWT returns the compact JWS of claims (*Claims, or *idClaims for ID
// tokens) signed with key (ES256).
func signJWT(rand io.Reader, key *ecdsa.PrivateKey, kid string, c any) (string, error) {
	hdr, err := json.Marshal(jwtHeader{Alg: algES256, Typ: "JWT", Kid: kid})
	if err != nil {
		return "", fmt.Errorf("encode token header: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	n := b64.EncodedLen(len(hdr)) + 1 + b64.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+b64.EncodedLen(64))
	b64.Encode(buf, hdr)
	buf[b64.EncodedLen(len(hdr))] = '.'
	b64.Encode(buf[b64.EncodedLen(len(hdr))+1:], payload)
	sum := sha256.Sum256(buf)
	r, s, err := ecdsa.Sign(rand, key, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// parsedJWT is a syntactically valid compact JWS whose signature has not been
// checked yet.
type parsedJWT struct {
	header       jwtHeader
	signingInput string // header.payload
	payload      []byte
	sig          []byte
}

// parseJWT splits and decodes a compact JWS, enforcing the algorithm
// allow-list (ES256 only: no "none", no HMAC, no RSA) and bounding sizes. It
// does not verify the signature or the claims.
func parseJWT(tok string) (*parsedJWT, error) {
	if len(tok) == 0 || len(tok) > maxTokenBytes {
		return nil, fmt.Errorf("token length %d out of range", len(tok))
	}
	i := strings.IndexByte(tok, '.')
	if i <= 0 {
		return nil, fmt.Errorf("token is not a compact JWS")
	}
	j := strings.IndexByte(tok[i+1:], '.')
	if j <= 0 {
		return nil, fmt.Errorf("token is not a compact JWS")
	}
	j += i + 1
	if strings.IndexByte(tok[j+1:], '.') >= 0 {
		return nil, fmt.Errorf("token has more than three parts")
	}
	hdrRaw, err := b64.DecodeString(tok[:i])
	if err != nil {
		return nil, fmt.Errorf("decode token header: %w", err)
	}
	var hdr jwtHeader
	if err := strictJSON(hdrRaw, &hdr); err != nil {
		return nil, fmt.Errorf("decode token header: %w", err)
	}
	if hdr.Alg != algES256 {
		return nil, fmt.Errorf("token algorithm %q not allowed", hdr.Alg)
	}
	if hdr.Typ != "" && !strings.EqualFold(hdr.Typ, "JWT") {
		return nil, fmt.Errorf("token type %q not allowed", hdr.Typ)
	}
	if len(hdr.Crit) != 0 {
		return nil, fmt.Errorf("token header has critical extensions")
	}
	if hdr.Kid == "" || len(hdr.Kid) > 128 {
		return nil, fmt.Errorf("token header has no usable key ID")
	}
	payload, err := b64.DecodeString(tok[i+1 : j])
	if err != nil {
		return nil, fmt.Errorf("decode token payload: %w", err)
	}
	sig, err := b64.DecodeString(tok[j+1:])
	if err != nil {
		return nil, fmt.Errorf("decode token signature: %w", err)
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("token signature has %d bytes; want 64", len(sig))
	}
	return &parsedJWT{header: hdr, signingInput: tok[:j], payload: payload, sig: sig}, nil
}

// verify checks the ES256 signature with pub.
func (p *parsedJWT) verify(pub *ecdsa.PublicKey) bool {
	sum := sha256.Sum256([]byte(p.signingInput))
	r := new(big.Int).SetBytes(p.sig[:32])
	s := new(big.Int).SetBytes(p.sig[32:])
	return ecdsa.Verify(pub, sum[:], r, s)
}

// claims decodes the payload. Unknown claims are ignored, as JWT requires;
// known claims must have the right JSON types.
func (p *parsedJWT) claims() (*Claims, error) {
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(p.payload))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode token claims: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode token claims: trailing data")
	}
	return &c, nil
}

// strictJSON decodes one JSON object into v, rejecting trailing data.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
