package export

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSigV4Vector checks the signer against AWS's published example
// ("GET Object" in the S3 SigV4 documentation: Authorization header).
func TestSigV4Vector(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", "bytes=0-9")
	now := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	signV4(req, "/test.txt", emptySHA256, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", now)
	const want = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	got := req.Header.Get("Authorization")
	if !strings.HasSuffix(got, "Signature="+want) ||
		!strings.Contains(got, "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date") ||
		!strings.Contains(got, "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request") {
		t.Fatalf("Authorization %q; want signature %s", got, want)
	}
}

func TestURIEncode(t *testing.T) {
	for in, want := range map[string]string{
		"WorkspaceResourceId=/subscriptions/a b/x": "WorkspaceResourceId%3D/subscriptions/a%20b/x",
		"a~b_c-d.e": "a~b_c-d.e",
		"ü":         "%C3%BC",
	} {
		if got := uriEncode(in, true); got != want {
			t.Errorf("uriEncode(%q) = %q; want %q", in, got, want)
		}
	}
}
