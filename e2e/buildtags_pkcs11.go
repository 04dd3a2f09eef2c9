//go:build pkcs11

package e2e

// binaryTags are the build tags BuildBinary passes to go build: tests built
// with -tags pkcs11 (test/pkcs11.sh, with cgo) run a custos binary that has
// the PKCS#11 key provider.
const binaryTags = "pkcs11"
