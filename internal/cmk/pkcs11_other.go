//go:build !pkcs11

package cmk

import "custos/internal/crypt"

const pkcs11Built = false

func newPKCS11(string, string, string, crypt.Secret) (crypt.KeyProvider, func() error, error) {
	return nil, nil, ErrNotBuilt
}
