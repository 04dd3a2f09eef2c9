package export

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"custos/internal/crypt"
)

// Manifests: after each flush the exporter writes
//
//	_manifests/<seq, 12 digits>.json = {"manifest": M, "signature": base64(Ed25519(key, "custos export manifest v1\n" || M))}
//
// where M is the JSON of Manifest exactly as signed. Seq counts from 1
// without gaps; Previous is the hex SHA-256 of the whole previous manifest
// file ("" for seq 1). Every data file of the destination is listed in
// exactly one manifest.
const (
	manifestDir     = "_manifests"
	manifestVersion = 1
	signDomain      = "custos export manifest v1\n"
	signingKeyAAD   = "custos export signing key v1"
)

// FileEntry describes one exported file.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows"`
	Table  string `json:"table,omitempty"`
	// Recovered marks a file written by a flush that did not complete (a
	// crash or a destination failure before its manifest): its rows were
	// exported again in later files.
	Recovered bool `json:"recovered,omitempty"`
}

// Manifest is one link of a destination's chain.
type Manifest struct {
	Version             int         `json:"version"`
	ExportID            string      `json:"exportId"`
	WorkspaceResourceID string      `json:"workspaceResourceId"`
	Seq                 int64       `json:"seq"`
	Previous            string      `json:"previous"`
	CreatedAt           string      `json:"createdAt"`
	KeyID               string      `json:"keyId"`
	LowWater            int64       `json:"lowWater"` // _TimeReceived ticks below which everything is exported
	Files               []FileEntry `json:"files"`
}

type signedManifest struct {
	Manifest  json.RawMessage `json:"manifest"`
	Signature string          `json:"signature"`
}

func manifestName(seq int64) string { return fmt.Sprintf("%s/%012d.json", manifestDir, seq) }

// parseManifestName returns the sequence number of a manifest object name.
func parseManifestName(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, manifestDir+"/")
	if !ok || len(rest) != 17 || !strings.HasSuffix(rest, ".json") {
		return 0, false
	}
	n, err := strconv.ParseInt(rest[:12], 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// SigningKey signs manifests. Its Ed25519 seed is stored sealed under the
// platform key. Safe for concurrent use.
type SigningKey struct {
	priv ed25519.PrivateKey
	id   string
}

// KeyIDOf returns the key ID of a public key: the first 16 hex digits of
// its SHA-256.
func KeyIDOf(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// sealer is the part of *crypt.PlatformKey that protects the signing key.
type sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

var _ sealer = (*crypt.PlatformKey)(nil)

// OpenSigningKey reads the signing key sealed at path, creating it (mode
// 0600) on first use.
func OpenSigningKey(path string, pk sealer) (*SigningKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(rand.Reader, seed); err != nil {
			return nil, fmt.Errorf("export signing key: random: %w", err)
		}
		defer crypt.Wipe(seed)
		sealed, err := pk.Seal(seed, []byte(signingKeyAAD))
		if err != nil {
			return nil, fmt.Errorf("export signing key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("export signing key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return OpenSigningKey(path, pk)
		}
		if err != nil {
			return nil, fmt.Errorf("export signing key: %w", err)
		}
		if _, err := f.Write(sealed); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("export signing key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("export signing key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("export signing key: %w", err)
		}
		return newSigningKey(seed), nil
	}
	if err != nil {
		return nil, fmt.Errorf("export signing key: %w", err)
	}
	seed, err := pk.Open(b, []byte(signingKeyAAD))
	if err != nil {
		return nil, fmt.Errorf("export signing key %s: %w", path, err)
	}
	defer crypt.Wipe(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("export signing key %s: %d bytes", path, len(seed))
	}
	return newSigningKey(seed), nil
}

func newSigningKey(seed []byte) *SigningKey {
	priv := ed25519.NewKeyFromSeed(seed)
	return &SigningKey{priv: priv, id: KeyIDOf(priv.Public().(ed25519.PublicKey))}
}

// Public returns the verification key.
func (k *SigningKey) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// KeyID returns the key's ID, recorded in every manifest.
func (k *SigningKey) KeyID() string { return k.id }

// signManifest returns the manifest file bytes.
func (k *SigningKey) signManifest(m *Manifest) ([]byte, error) {
	m.Version, m.KeyID = manifestVersion, k.id
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(k.priv, append([]byte(signDomain), raw...))
	out, err := json.Marshal(signedManifest{Manifest: raw, Signature: base64.StdEncoding.EncodeToString(sig)})
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// maxManifestBytes bounds a manifest file.
const maxManifestBytes = 64 << 20

// openManifest checks a manifest file's signature and decodes it.
func openManifest(b []byte, pub ed25519.PublicKey) (*Manifest, error) {
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("manifest is %d bytes", len(b))
	}
	var sm signedManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sm); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(sm.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, errors.New("manifest signature is malformed")
	}
	if !ed25519.Verify(pub, append([]byte(signDomain), sm.Manifest...), sig) {
		return nil, errors.New("manifest signature does not verify with the export signing key")
	}
	var m Manifest
	if err := json.Unmarshal(sm.Manifest, &m); err != nil {
		return nil, fmt.Errorf("manifest body: %v", err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("manifest version %d", m.Version)
	}
	return &m, nil
}

// VerifyError reports the first problem Verify found. It wraps ErrTampered.
type VerifyError struct {
	Kind   string // "modified", "missing", "extra", "chain"
	Object string
	Msg    string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("export: %s: %s: %s", e.Kind, e.Object, e.Msg)
}

// Unwrap returns ErrTampered.
func (e *VerifyError) Unwrap() error { return ErrTampered }

// Report summarizes a verification.
type Report struct {
	Manifests int
	Files     int
	Rows      int64
	Bytes     int64
	HeadSeq   int64
	HeadHash  string
	ExportIDs []string
	// Problems lists every finding; the error returned is the first.
	Problems []*VerifyError
}

// chain is a destination's manifests as read back.
type chain struct {
	seq   int64
	head  string
	files map[string]FileEntry
	ids   map[string]bool
}

// readChain reads and checks the manifest chain of dest, appending
// problems to rep. It does not read data files.
func readChain(ctx context.Context, dest Destination, objs []Object, pub ed25519.PublicKey, rep *Report) (*chain, error) {
	c := &chain{files: map[string]FileEntry{}, ids: map[string]bool{}}
	var seqs []int64
	names := map[int64]string{}
	for _, o := range objs {
		if !strings.HasPrefix(o.Name, manifestDir+"/") {
			continue
		}
		n, ok := parseManifestName(o.Name)
		if !ok {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "extra", Object: o.Name, Msg: "not a manifest name"})
			continue
		}
		seqs = append(seqs, n)
		names[n] = o.Name
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	prev := ""
	for i, n := range seqs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if want := int64(i + 1); n != want {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "missing", Object: manifestName(want),
				Msg: fmt.Sprintf("manifest %d is missing (the next present is %d)", want, n)})
			return c, nil
		}
		b, err := dest.Get(ctx, names[n])
		if err != nil {
			return nil, err
		}
		m, err := openManifest(b, pub)
		if err != nil {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "chain", Object: names[n], Msg: err.Error()})
			return c, nil
		}
		if m.Seq != n {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "chain", Object: names[n], Msg: fmt.Sprintf("says seq %d", m.Seq)})
			return c, nil
		}
		if m.Previous != prev {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "chain", Object: names[n],
				Msg: "its previous-manifest hash does not match the previous manifest"})
			return c, nil
		}
		for _, f := range m.Files {
			if _, dup := c.files[f.Name]; dup {
				rep.Problems = append(rep.Problems, &VerifyError{Kind: "chain", Object: names[n], Msg: "lists " + f.Name + " twice"})
				continue
			}
			c.files[f.Name] = f
		}
		c.ids[m.ExportID] = true
		sum := sha256.Sum256(b)
		prev = hex.EncodeToString(sum[:])
		c.seq, c.head = n, prev
	}
	return c, nil
}

// Verify checks a destination against its manifest chain and pub: every
// manifest's signature and link, every listed file's presence, size and
// SHA-256, and that no file is unlisted. It returns a *VerifyError (wrapping
// ErrTampered) for the first problem, with all of them in the report, or
// another error if the destination cannot be read.
func Verify(ctx context.Context, dest Destination, pub ed25519.PublicKey) (Report, error) {
	var rep Report
	objs, err := dest.List(ctx, "")
	if err != nil {
		return rep, err
	}
	c, err := readChain(ctx, dest, objs, pub, &rep)
	if err != nil {
		return rep, err
	}
	rep.Manifests, rep.HeadSeq, rep.HeadHash = int(c.seq), c.seq, c.head
	for id := range c.ids {
		rep.ExportIDs = append(rep.ExportIDs, id)
	}
	sort.Strings(rep.ExportIDs)
	present := map[string]int64{}
	for _, o := range objs {
		if strings.HasPrefix(o.Name, manifestDir+"/") {
			continue
		}
		present[o.Name] = o.Size
		if _, ok := c.files[o.Name]; !ok {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "extra", Object: o.Name, Msg: "the file is in no manifest"})
		}
	}
	names := make([]string, 0, len(c.files))
	for n := range c.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := c.files[n]
		size, ok := present[n]
		if !ok {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "missing", Object: n, Msg: "listed in a manifest but not in the destination"})
			continue
		}
		if size != f.Size {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "modified", Object: n, Msg: fmt.Sprintf("size %d; the manifest says %d", size, f.Size)})
			continue
		}
		b, err := dest.Get(ctx, n)
		if err != nil {
			return rep, err
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			rep.Problems = append(rep.Problems, &VerifyError{Kind: "modified", Object: n, Msg: "SHA-256 differs from the manifest"})
			continue
		}
		rep.Files++
		rep.Bytes += f.Size
		if !f.Recovered {
			rep.Rows += f.Rows
		}
	}
	if len(rep.Problems) > 0 {
		return rep, rep.Problems[0]
	}
	return rep, nil
}

// ParseDestinationURI opens a destination for verification or export:
// file:///abs/dir (or a plain absolute path) or s3://bucket[/prefix] with
// the given S3 settings.
func ParseDestinationURI(uri string, s3 *S3Config, secret string) (Destination, error) {
	switch {
	case strings.HasPrefix(uri, "file://"):
		p := strings.TrimPrefix(uri, "file://")
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("%w: %q is not an absolute file:// path", ErrDestination, uri)
		}
		return &DirDestination{Root: filepath.Clean(p)}, nil
	case filepath.IsAbs(uri):
		return &DirDestination{Root: filepath.Clean(uri)}, nil
	case strings.HasPrefix(uri, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
		if s3 == nil || s3.Endpoint == "" {
			return nil, fmt.Errorf("%w: an s3:// destination needs an endpoint", ErrDestination)
		}
		if !validBucket(bucket) {
			return nil, fmt.Errorf("%w: bucket name %q is invalid", ErrDestination, bucket)
		}
		return &S3Destination{Endpoint: s3.Endpoint, Bucket: bucket, Prefix: strings.Trim(prefix, "/"), Region: s3.region(),
			AccessKey: s3.AccessKeyID, SecretKey: secret, Now: time.Now}, nil
	}
	return nil, fmt.Errorf("%w: %q is neither file:///dir nor s3://bucket/prefix", ErrDestination, uri)
}

// validBucket checks S3 bucket naming (3 to 63 lower-case letters, digits,
// '.', '-').
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return b[0] != '.' && b[0] != '-' && b[len(b)-1] != '.' && b[len(b)-1] != '-'
}
