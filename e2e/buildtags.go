//go:build !pkcs11

package e2e

// binaryTags are the build tags BuildBinary passes to go build: the custos
// binary the tests run has the same optional parts as the tests themselves.
const binaryTags = ""
