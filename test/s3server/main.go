// Command s3server is a small S3-compatible server for Custos's data export
// tests: gofakes3 with its file-backed (bbolt) backend, on
// 127.0.0.1. It is a separate module so the main module does not depend
// on gofakes3. test/install-s3.sh installs it as custos-s3server.
//
//	custos-s3server -dir /tmp/s3 -addr 127.0.0.1:0 -bucket exports
//
// With -access-key and -secret-key it accepts only requests signed with AWS
// Signature Version 4 by that key pair for -region (see sigv4.go) and answers
// anything else 403 as S3 does; without them it accepts any request.
//
//	custos-s3server -dir /tmp/s3 -bucket exports -access-key AK -secret-key SK
//
// It prints "listening on http://ADDR" when ready.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
)

func main() {
	dir := flag.String("dir", "", "directory holding the buckets (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	bucket := flag.String("bucket", "", "bucket to create at start")
	verbose := flag.Bool("v", false, "log requests and errors to stderr")
	accessKey := flag.String("access-key", "", "require AWS SigV4 signatures by this access key ID (with -secret-key)")
	secretKey := flag.String("secret-key", "", "the secret key of -access-key")
	region := flag.String("region", "us-east-1", "the region signatures must be scoped to")
	flag.Parse()
	if *dir == "" {
		log.Fatal("s3server: -dir is required")
	}
	if (*accessKey == "") != (*secretKey == "") {
		log.Fatal("s3server: -access-key and -secret-key go together")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		log.Fatal(err)
	}
	// The bbolt backend keeps every object in one file under dir; the afero
	// backend maps keys to file names and fails on long keys such as
	// Azure's export layout.
	backend, err := s3bolt.NewFile(filepath.Join(*dir, "s3.bolt"))
	if err != nil {
		log.Fatal(err)
	}
	if *bucket != "" {
		if err := backend.CreateBucket(*bucket); err != nil && !gofakes3.IsAlreadyExists(err) {
			log.Fatal(err)
		}
	}
	opts := []gofakes3.Option{gofakes3.WithAutoBucket(false)}
	if *verbose {
		opts = append(opts, gofakes3.WithGlobalLog())
	}
	faker := gofakes3.New(backend, opts...)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	handler := faker.Server()
	if *accessKey != "" {
		handler = &sigv4Verifier{accessKey: *accessKey, secretKey: *secretKey, region: *region,
			maxSkew: 15 * time.Minute, now: time.Now, next: handler}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
