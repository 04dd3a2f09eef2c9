// Package crypt owns Custos's key hierarchy and envelope encryption.
//
// The hierarchy follows DESIGN.md "Keys and encryption":
//
//	KeyProvider (platform key; or a customer-managed key: FileKey, Transit for
//	             Vault/OpenBao, AzureKeyVault, PKCS11 behind the pkcs11 build tag)
//	  └─ wraps each workspace key            (*Key, AES-256)
//	       └─ wraps each part / WAL segment data key (*Key, AES-256)
//	            └─ seals the blocks and records
//
// Every ciphertext produced here is an envelope:
//
//	version (1 byte, = 1) | key ID length (1 byte, 1..255) | key ID | nonce (12 bytes) | AES-256-GCM ciphertext+tag
//
// The GCM additional data is the envelope header (version, key ID length, key
// ID) followed by the caller's AAD, so the key ID cannot be swapped and the
// ciphertext is bound to the location the caller names in its AAD (for
// example workspace, table, part, block and column). Only the Go standard
// library's crypto is used, so the build can run in FIPS 140-3 mode.
//
// crypt imports nothing from Custos.
package crypt
