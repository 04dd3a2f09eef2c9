package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Path is the server path of the enrollment endpoint (POST, JSON body
// Request, JSON answer Response). It is authenticated by the enrollment
// token in the body alone.
const Path = "/enroll"

// ClusterPath is the enrollment endpoint of Kubernetes clusters (POST,
// Request with the cluster's name, Response naming the
// Microsoft.Kubernetes/connectedClusters resource). Cluster tokens come from
// `custos cluster enroll-token` and enroll only clusters.
const ClusterPath = "/enroll/connectedClusters"

// TokenPrefix starts every enrollment token, so that leaked tokens are easy
// to recognise (and to scan for).
const TokenPrefix = "cet1."

// MaxRequestBytes bounds an enrollment request body.
const MaxRequestBytes = 16 << 10

// Request is the body of POST {endpoint}/enroll.
type Request struct {
	// EnrollmentToken is the one-time token from `custos machine enroll-token`.
	EnrollmentToken string `json:"enrollmentToken"`
	// Name is the machine resource name; empty means the short host name.
	Name string `json:"name,omitempty"`
	// Hostname is the machine's fully qualified host name, as reported.
	Hostname     string `json:"hostname"`
	OSType       string `json:"osType,omitempty"` // "Linux" or "Windows"
	OSName       string `json:"osName,omitempty"`
	OSVersion    string `json:"osVersion,omitempty"`
	AgentVersion string `json:"agentVersion,omitempty"`
	// Distribution and KubernetesVersion describe a cluster (ClusterPath
	// only; machine enrollment ignores them).
	Distribution      string `json:"distribution,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// PublicKey is the machine's public key (EC P-256, or RSA of 2048 to
	// 4096 bits). The identity is bound to it.
	PublicKey JWK `json:"publicKey"`
}

// Response is the answer to a successful enrollment.
type Response struct {
	ID          string `json:"id"` // machine resource ID
	Name        string `json:"name"`
	Location    string `json:"location"`
	TenantID    string `json:"tenantId"`
	ClientID    string `json:"clientId"`    // the identity's client_id (app ID)
	PrincipalID string `json:"principalId"` // the identity's object ID, which role assignments name
	// KeyID is the RFC 7638 thumbprint of the public key; assertions carry it as kid.
	KeyID string `json:"keyId"`
	// AuthorityHost is the token service's base URL (azidentity's AuthorityHost).
	AuthorityHost string `json:"authorityHost"`
	// TokenEndpoint is where assertions are exchanged for access tokens.
	TokenEndpoint string `json:"tokenEndpoint"`
	// ConfigurationEndpoint returns the DCRs associated with the machine.
	ConfigurationEndpoint string `json:"configurationEndpoint"`
}

// JWK is a public JSON Web Key (RFC 7517): EC P-256 or RSA.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// Key size limits for RSA machine keys.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

var b64 = base64.RawURLEncoding

// ErrUnsupportedKey is returned for keys other than EC P-256 and RSA
// 2048–4096 bits.
var ErrUnsupportedKey = errors.New("enroll: unsupported public key")

// PublicJWK returns the JWK of an EC P-256 or RSA public key.
func PublicJWK(pub crypto.PublicKey) (JWK, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return JWK{}, fmt.Errorf("%w: EC curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		pt, err := k.Bytes()
		if err != nil || len(pt) != 65 {
			return JWK{}, fmt.Errorf("%w: bad EC point", ErrUnsupportedKey)
		}
		return JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(pt[1:33]), Y: b64.EncodeToString(pt[33:])}, nil
	case *rsa.PublicKey:
		if b := k.N.BitLen(); b < MinRSABits || b > MaxRSABits {
			return JWK{}, fmt.Errorf("%w: RSA key of %d bits", ErrUnsupportedKey, b)
		}
		e := big.NewInt(int64(k.E)).Bytes()
		return JWK{Kty: "RSA", N: b64.EncodeToString(k.N.Bytes()), E: b64.EncodeToString(e)}, nil
	}
	return JWK{}, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// PublicKey decodes and checks the key: EC keys must be P-256 points on the
// curve; RSA keys 2048 to 4096 bits with a small odd exponent.
func (j JWK) PublicKey() (crypto.PublicKey, error) {
	switch j.Kty {
	case "EC":
		if j.Crv != "P-256" || j.N != "" || j.E != "" {
			return nil, fmt.Errorf("%w: EC keys must use crv P-256", ErrUnsupportedKey)
		}
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("%w: bad EC coordinates", ErrUnsupportedKey)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
		}
		return pub, nil
	case "RSA":
		if j.Crv != "" || j.X != "" || j.Y != "" {
			return nil, fmt.Errorf("%w: RSA key with EC members", ErrUnsupportedKey)
		}
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, fmt.Errorf("%w: bad RSA modulus or exponent", ErrUnsupportedKey)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if b := pub.N.BitLen(); b < MinRSABits || b > MaxRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits", ErrUnsupportedKey, b)
		}
		if pub.E < 3 || pub.E%2 == 0 || pub.E > 1<<31-1 {
			return nil, fmt.Errorf("%w: RSA exponent %d", ErrUnsupportedKey, pub.E)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("%w: kty %q", ErrUnsupportedKey, truncate(j.Kty, 16))
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of an
// EC P-256 or RSA public key. Assertions signed by a machine key carry it as
// kid.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := PublicJWK(pub)
	if err != nil {
		return "", err
	}
	var canon string
	switch j.Kty {
	case "EC":
		canon = `{"crv":"P-256","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	default:
		canon = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	}
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:]), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ShortHostname returns the first label of a host name, for a default
// machine name.
func ShortHostname(h string) string {
	h, _, _ = strings.Cut(strings.TrimSpace(h), ".")
	return h
}
