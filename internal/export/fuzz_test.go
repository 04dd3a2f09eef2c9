package export

import (
	"bytes"
	"testing"
)

// FuzzOpenManifest feeds arbitrary bytes (a destination's manifest objects
// are untrusted) to the manifest decoder: it must never panic, and only a
// correctly signed manifest may decode.
func FuzzOpenManifest(f *testing.F) {
	k := newSigningKey(bytes.Repeat([]byte{1}, 32))
	good, err := k.signManifest(&Manifest{ExportID: "e", Seq: 1, Files: []FileEntry{{Name: "a/b.json", Size: 3, SHA256: "00", Rows: 1}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"manifest":{},"signature":""}`))
	f.Add([]byte(`{"manifest":null,"signature":"AAAA"}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := openManifest(b, k.Public())
		if err == nil {
			if m == nil || !bytes.Contains(b, []byte(`"signature"`)) {
				t.Fatalf("decoded without a signature: %q", b)
			}
			again, err := k.signManifest(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := openManifest(again, k.Public()); err != nil {
				t.Fatalf("re-signed manifest does not open: %v", err)
			}
		}
	})
}

// FuzzObjectName checks the destination name rules never panic and never
// accept a path that escapes the root.
func FuzzObjectName(f *testing.F) {
	for _, s := range []string{"a/b.json", "../x", "a//b", "/abs", "a/./b", "_manifests/000000000001.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		d := &DirDestination{Root: "/root-dir"}
		p, err := d.path(name)
		if err == nil && !bytes.HasPrefix([]byte(p), []byte("/root-dir/")) {
			t.Fatalf("%q maps to %q outside the root", name, p)
		}
		parseManifestName(name)
	})
}
