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

// startS3Server runs custos-s3server (test/install-s3.sh) on loopback with
// a file-backed bucket and returns its endpoint. A missing binary fails the
// test with the install command.
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
	cmd := exec.Command(bin, "-dir", t.TempDir(), "-addr", "127.0.0.1:0", "-bucket", bucket)
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
	secret := "test-secret-key"
	rule := e.putRule("to-s3", "s3://exports/custos/ws1", "", &S3Config{Endpoint: endpoint, AccessKeyID: "AKTEST"}, &secret)
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
	// Wrong credentials do not matter to this fake server, but a wrong
	// bucket does.
	bad := &S3Destination{Endpoint: endpoint, Bucket: "nope", Region: "us-east-1", AccessKey: "a", SecretKey: "b"}
	if _, err := bad.List(ctx, ""); err == nil {
		t.Fatal("listing a missing bucket succeeded")
	}
}
