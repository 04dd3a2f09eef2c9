package export

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Errors returned by this package. Classify them with errors.Is.
var (
	// ErrExists is returned when a write-once object already exists.
	ErrExists = errors.New("export: object already exists")
	// ErrNotFound is returned when an object does not exist.
	ErrNotFound = errors.New("export: object not found")
	// ErrDestination is wrapped by errors about a destination's
	// configuration (not allowed, malformed, unreachable at validation).
	ErrDestination = errors.New("export: bad destination")
	// ErrTampered is wrapped by every *VerifyError.
	ErrTampered = errors.New("export: verification failed")
)

// Object is one stored object of a destination.
type Object struct {
	Name string // slash-separated, relative to the destination root
	Size int64
}

// Destination stores exported objects, write-once. Implementations are safe
// for concurrent use.
type Destination interface {
	// Put stores data under name; it fails with ErrExists if name exists.
	Put(ctx context.Context, name string, data []byte) error
	// Get returns an object's content, or ErrNotFound.
	Get(ctx context.Context, name string) ([]byte, error)
	// List returns every object whose name starts with prefix, by name.
	List(ctx context.Context, prefix string) ([]Object, error)
	// String names the destination for logs (no credentials).
	String() string
}

// maxObjectBytes bounds what Get reads (manifests and, when verifying,
// data files).
const maxObjectBytes = 1 << 30

// validObjectName checks a relative, slash-separated name without empty,
// "." or ".." segments.
func validObjectName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || len(name) > 1024 {
		return fmt.Errorf("export: bad object name %q", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, 0) {
			return fmt.Errorf("export: bad object name %q", name)
		}
	}
	return nil
}

// DirDestination writes objects as files under a directory. Files are
// created with mode 0440 through a temporary file and a hard link, so an
// existing file is never replaced and a crash leaves no partial file.
type DirDestination struct {
	Root string
}

var _ Destination = (*DirDestination)(nil)

func (d *DirDestination) String() string { return "file://" + d.Root }

func (d *DirDestination) path(name string) (string, error) {
	if err := validObjectName(name); err != nil {
		return "", err
	}
	return filepath.Join(d.Root, filepath.FromSlash(name)), nil
}

// Put implements Destination.
func (d *DirDestination) Put(_ context.Context, name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("export: write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o440); err != nil {
		tmp.Close()
		return fmt.Errorf("export: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("export: sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Link(tmpName, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, name)
		}
		return fmt.Errorf("export: %w", err)
	}
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
	return nil
}

// Get implements Destination.
func (d *DirDestination) Get(_ context.Context, name string) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxObjectBytes+1))
	if err != nil {
		return nil, fmt.Errorf("export: read %s: %w", name, err)
	}
	if len(b) > maxObjectBytes {
		return nil, fmt.Errorf("export: %s is larger than %d bytes", name, maxObjectBytes)
	}
	return b, nil
}

// List implements Destination. Temporary files of unfinished writes are skipped.
func (d *DirDestination) List(_ context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == d.Root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		out = append(out, Object{Name: name, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export: list %s: %w", d.Root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// S3Destination writes objects to an S3-compatible bucket with path-style
// requests signed with AWS Signature Version 4.
type S3Destination struct {
	Endpoint  string // https://host[:port] (http only when allowed by the caller)
	Bucket    string
	Prefix    string // key prefix without a trailing slash; "" for the bucket root
	Region    string
	AccessKey string
	SecretKey string
	Client    *http.Client
	Now       func() time.Time
}

var _ Destination = (*S3Destination)(nil)

func (s *S3Destination) String() string {
	return "s3://" + s.Bucket + "/" + s.Prefix + " at " + s.Endpoint
}

func (s *S3Destination) key(name string) string {
	if s.Prefix == "" {
		return name
	}
	return s.Prefix + "/" + name
}

func (s *S3Destination) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// do sends one signed request for key (may be "" for the bucket).
func (s *S3Destination) do(ctx context.Context, method, key string, query url.Values, body []byte, hdr http.Header) (*http.Response, error) {
	base, err := url.Parse(strings.TrimRight(s.Endpoint, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint: %v", ErrDestination, err)
	}
	escaped := strings.TrimRight(base.EscapedPath(), "/") + "/" + uriEncode(s.Bucket, false)
	if key != "" {
		escaped += "/" + uriEncode(key, true)
	}
	u := *base
	u.RawPath = escaped
	if u.Path, err = url.PathUnescape(escaped); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDestination, err)
	}
	u.RawQuery = canonicalQuery(query)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.ContentLength = int64(len(body))
	payload := emptySHA256
	if len(body) > 0 {
		payload = sha256Hex(body)
	}
	signV4(req, escaped, payload, s.AccessKey, s.SecretKey, s.Region, s.now())
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: time.Minute}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("export: %s %s: %w", method, s.String(), err)
	}
	return resp, nil
}

// s3Error reads an S3 error response into an error.
func s3Error(resp *http.Response, what string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	_ = xml.Unmarshal(b, &e)
	if e.Code == "" {
		e.Code = resp.Status
	}
	return fmt.Errorf("export: %s: S3 answered %d %s: %s", what, resp.StatusCode, e.Code, e.Message)
}

// Put implements Destination: a HEAD first (most S3-compatible servers do
// not honour If-None-Match), then a PUT with If-None-Match: * (AWS does).
func (s *S3Destination) Put(ctx context.Context, name string, data []byte) error {
	if err := validObjectName(name); err != nil {
		return err
	}
	key := s.key(name)
	resp, err := s.do(ctx, http.MethodHead, key, nil, nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return fmt.Errorf("%w: %s", ErrExists, name)
	case http.StatusNotFound:
	default:
		return s3Error(resp, "head "+name)
	}
	hdr := http.Header{"If-None-Match": {"*"}, "Content-Type": {contentType(name)}}
	resp, err = s.do(ctx, http.MethodPut, key, nil, data, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	case http.StatusPreconditionFailed, http.StatusConflict:
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	return s3Error(resp, "put "+name)
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".json":
		return "application/json"
	case ".parquet":
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}

// Get implements Destination.
func (s *S3Destination) Get(ctx context.Context, name string) ([]byte, error) {
	if err := validObjectName(name); err != nil {
		return nil, err
	}
	resp, err := s.do(ctx, http.MethodGet, s.key(name), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, s3Error(resp, "get "+name)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxObjectBytes+1))
	if err != nil {
		return nil, fmt.Errorf("export: get %s: %w", name, err)
	}
	if len(b) > maxObjectBytes {
		return nil, fmt.Errorf("export: %s is larger than %d bytes", name, maxObjectBytes)
	}
	return b, nil
}

// List implements Destination with ListObjectsV2 pages.
func (s *S3Destination) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	token := ""
	full := s.key(prefix)
	if s.Prefix != "" && prefix == "" {
		full = s.Prefix + "/"
	}
	for page := 0; page < 100000; page++ {
		q := url.Values{"list-type": {"2"}, "prefix": {full}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := s.do(ctx, http.MethodGet, "", q, nil, nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			err := s3Error(resp, "list")
			resp.Body.Close()
			return nil, err
		}
		var res struct {
			Contents []struct {
				Key  string `xml:"Key"`
				Size int64  `xml:"Size"`
			} `xml:"Contents"`
			IsTruncated           bool   `xml:"IsTruncated"`
			NextContinuationToken string `xml:"NextContinuationToken"`
		}
		err = xml.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&res)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("export: list: %w", err)
		}
		for _, c := range res.Contents {
			name := c.Key
			if s.Prefix != "" {
				name = strings.TrimPrefix(name, s.Prefix+"/")
			}
			out = append(out, Object{Name: name, Size: c.Size})
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
			return out, nil
		}
		token = res.NextContinuationToken
	}
	return nil, errors.New("export: list: too many pages")
}
