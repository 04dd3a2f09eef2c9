package export

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The key pair custos-s3server requires: it refuses any request not signed
// with AWS SigV4 by it (test/s3server/sigv4.go, written independently of
// sigv4.go).
const (
	s3AccessKey = "AKTEST"
	s3SecretKey = "test-secret-key"
)

// startS3Server runs custos-s3server (test/install-s3.sh) on loopback with
// a file-backed bucket, requiring signatures by s3AccessKey, and returns its
// endpoint. A missing binary fails the test with the install command.
func startS3Server(t *testing.T, bucket string) string {
	t.Helper()
	bin, err := exec.LookPath("custos-s3server")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "custos-s3server")
		if _, serr := os.Stat(p); serr != nil {
			t.Fatalf("custos-s3server is not installed: run test/install-s3.sh (%v)", err)
		}
		bin = p
	}
	cmd := exec.Command(bin, "-dir", t.TempDir(), "-addr", "127.0.0.1:0", "-bucket", bucket,
		"-access-key", s3AccessKey, "-secret-key", s3SecretKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				line <- s
			}
		}
	}()
	select {
	case u := <-line:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("custos-s3server did not start")
	}
	return ""
}

// TestExportToS3 exports to a real S3-compatible server (HTTP on loopback,
// allowed by InsecureS3HTTP): rows arrive under the signed chain, objects
// are write-once, and an object added behind Custos's back is found.
func TestExportToS3(t *testing.T) {
	endpoint := startS3Server(t, "exports")
	e := newTestEnv(t)
	ctx := context.Background()
	x := e.newExporter(Options{InsecureS3HTTP: true})
	secret := s3SecretKey
	rule := e.putRule("to-s3", "s3://exports/custos/ws1", "", &S3Config{Endpoint: endpoint, AccessKeyID: s3AccessKey}, &secret)
	x.Refresh(ctx)
	e.ingest(4)
	x.FlushNow(ctx)
	e.ingest(2)
	x.FlushNow(ctx)
	dest, err := x.destination(ctx, &rule)
	if err != nil {
		t.Fatal(err)
	}
	wantMsgs(t, exportedMsgs(t, dest), 1, 6, true)
	rep, err := Verify(ctx, dest, e.signer.Public())
	if err != nil || rep.Manifests != 2 || rep.Rows != 6 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	objs, err := dest.List(ctx, "")
	if err != nil || len(objs) != 4 {
		t.Fatalf("objects %v %v", objs, err)
	}
	if err := dest.Put(ctx, objs[0].Name, []byte("overwrite")); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite: %v; want ErrExists", err)
	}
	if err := dest.Put(ctx, "am-app_cl/extra.json", []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	var ve *VerifyError
	if _, err := Verify(ctx, dest, e.signer.Public()); !errors.As(err, &ve) || ve.Kind != "extra" {
		t.Fatalf("extra object: %v", err)
	}
	// A wrong bucket is refused.
	bad := &S3Destination{Endpoint: endpoint, Bucket: "nope", Region: "us-east-1", AccessKey: s3AccessKey, SecretKey: s3SecretKey}
	if _, err := bad.List(ctx, ""); err == nil {
		t.Fatal("listing a missing bucket succeeded")
	}
}

// TestS3SignatureRefused shows the S3 server checks signatures, so that
// TestExportToS3 passing means Custos signs correctly: a wrong secret, an
// unknown access key, another region and a clock 20 minutes off are all
// refused with S3's error codes, while the right credentials list and put.
func TestS3SignatureRefused(t *testing.T) {
	endpoint := startS3Server(t, "exports")
	ctx := context.Background()
	good := &S3Destination{Endpoint: endpoint, Bucket: "exports", Prefix: "p", Region: "us-east-1", AccessKey: s3AccessKey, SecretKey: s3SecretKey}
	if err := good.Put(ctx, "t/a b+c=d.json", []byte("{}\n")); err != nil {
		t.Fatalf("signed put (key with space, plus, equals): %v", err)
	}
	if objs, err := good.List(ctx, ""); err != nil || len(objs) != 1 {
		t.Fatalf("signed list: %v %v", objs, err)
	}
	for _, c := range []struct {
		name string
		mod  func(d *S3Destination)
		code string
	}{
		{"wrong secret", func(d *S3Destination) { d.SecretKey = "wrong-secret" }, "SignatureDoesNotMatch"},
		{"unknown access key", func(d *S3Destination) { d.AccessKey = "AKOTHER" }, "InvalidAccessKeyId"},
		{"other region", func(d *S3Destination) { d.Region = "eu-west-1" }, "AuthorizationHeaderMalformed"},
		{"skewed clock", func(d *S3Destination) { d.Now = func() time.Time { return time.Now().Add(-20 * time.Minute) } }, "RequestTimeTooSkewed"},
	} {
		d := *good
		c.mod(&d)
		_, err := d.List(ctx, "")
		if err == nil || !strings.Contains(err.Error(), "403 "+c.code) {
			t.Errorf("%s: list: %v; want 403 %s", c.name, err, c.code)
		}
		if err := d.Put(ctx, "t/other.json", []byte("{}\n")); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s: put: %v; want 403", c.name, err)
		}
	}
	if objs, err := good.List(ctx, ""); err != nil || len(objs) != 1 {
		t.Fatalf("after refused puts: %v %v", objs, err)
	}
}
