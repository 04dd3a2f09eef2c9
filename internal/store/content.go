package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"custos/internal/crypt"
)

// Customer content (saved searches, functions, alert rule queries, export
// destination secrets, ...) kept outside the store, typically in the catalog,
// is sealed under the workspace key hierarchy so that it follows the
// workspace's encryption: a linked customer-managed key's revocation makes it
// unreadable (and unwritable) like the workspace's logs, and with double
// encryption it gets both layers.
//
// Sealed content format (version 1):
//
//	"CSTCNT" | version byte 1 | layer count byte (1 or 2) | envelope
//
// The envelope is a crypt envelope sealed by the workspace service key
// ("ws-<id>") and, with two layers, sealed again by the workspace
// infrastructure key ("ws-<id>-infra"). Both layers bind the AAD
// "custos/content/v1\x00<workspace id>\x00<caller's aad>", so content sealed
// for one workspace or one purpose does not open for another.
const (
	contentMagic   = "CSTCNT"
	contentVersion = 1
	contentHdrLen  = len(contentMagic) + 2
)

func contentAAD(wsID string, aad []byte) []byte {
	out := make([]byte, 0, 20+len(wsID)+len(aad))
	out = append(out, "custos/content/v1\x00"...)
	out = append(out, wsID...)
	out = append(out, 0)
	return append(out, aad...)
}

// SealWorkspaceContent encrypts plaintext under the key of the workspace
// (created if it does not exist yet), binding it to aad, which the caller
// passes again to OpenWorkspaceContent (for example the content's resource
// ID). With double encryption on, the result has two independent layers.
// While the workspace's customer-managed key refuses, it fails with a
// *KeyUnavailableError. Safe for concurrent use.
func (db *DB) SealWorkspaceContent(ctx context.Context, workspaceID string, plaintext, aad []byte) ([]byte, error) {
	id := strings.ToLower(workspaceID)
	ws, err := db.workspace(ctx, id, true)
	if err != nil {
		return nil, fmt.Errorf("seal workspace content: %w", err)
	}
	k, err := ws.requireKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("seal workspace content: %w", err)
	}
	l := layers{k.service}
	if k.infra != nil {
		l = append(l, k.infra)
	}
	out := make([]byte, 0, contentHdrLen+len(plaintext)+2*(k.service.Overhead()+8))
	out = append(out, contentMagic...)
	out = append(out, contentVersion, byte(len(l)))
	out, err = l.Seal(out, plaintext, contentAAD(id, aad))
	if err != nil {
		return nil, fmt.Errorf("seal workspace content: %w", err)
	}
	return out, nil
}

// OpenWorkspaceContent decrypts content sealed by SealWorkspaceContent for
// the same workspace and aad. It fails with ErrCorrupt if the bytes were changed or belong to another workspace or
// aad, with a *KeyUnavailableError while the workspace's customer-managed key
// refuses, and with ErrTableNotFound if the workspace does not exist (a
// dropped workspace's content is gone with its key). Safe for concurrent use.
func (db *DB) OpenWorkspaceContent(ctx context.Context, workspaceID string, sealed, aad []byte) ([]byte, error) {
	id := strings.ToLower(workspaceID)
	if len(sealed) < contentHdrLen || string(sealed[:len(contentMagic)]) != contentMagic ||
		sealed[len(contentMagic)] != contentVersion {
		return nil, fmt.Errorf("open workspace content: %w: bad header", ErrCorrupt)
	}
	n := sealed[len(contentMagic)+1]
	if n != 1 && n != 2 {
		return nil, fmt.Errorf("open workspace content: %w: %d layers", ErrCorrupt, n)
	}
	ws, err := db.workspace(ctx, id, false)
	if err != nil {
		return nil, fmt.Errorf("open workspace content: %w", err)
	}
	if ws == nil {
		return nil, fmt.Errorf("open workspace content: %w: workspace %s", ErrTableNotFound, id)
	}
	k, err := ws.requireKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("open workspace content: %w", err)
	}
	l := layers{k.service}
	if n == 2 {
		if k.infra == nil {
			return nil, fmt.Errorf("open workspace content: %w: two layers in a workspace without double encryption", ErrCorrupt)
		}
		l = append(l, k.infra)
	}
	out, err := l.Open(nil, sealed[contentHdrLen:], contentAAD(id, aad))
	if err != nil {
		if errors.Is(err, crypt.ErrAuth) || errors.Is(err, crypt.ErrMalformed) || errors.Is(err, crypt.ErrKeyMismatch) {
			return nil, fmt.Errorf("open workspace content: %w: %w", ErrCorrupt, err)
		}
		return nil, fmt.Errorf("open workspace content: %w", err)
	}
	return out, nil
}
