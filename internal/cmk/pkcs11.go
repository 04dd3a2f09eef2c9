//go:build pkcs11

package cmk

import "custos/internal/crypt"

const pkcs11Built = true

func newPKCS11(module, token, label string, pin crypt.Secret) (crypt.KeyProvider, func() error, error) {
	p, err := crypt.NewPKCS11(crypt.PKCS11Options{Module: module, TokenLabel: token, PIN: pin, KeyLabel: label})
	if err != nil {
		return nil, nil, err
	}
	return p, p.Close, nil
}
