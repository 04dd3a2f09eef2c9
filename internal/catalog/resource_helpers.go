package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Helpers shared by the enrolled resources (machines.go, clusters_k8s.go):
// the one-time token they enroll with, listing by subscription or resource
// group, and the ETag-guarded delete.

// createToken stores the hash of a new one-time enrollment token of e's
// kind for resource group rg, valid until expires. Machine and cluster
// tokens live in different tables, so neither enrolls the other kind.
func (e enrollment) createToken(ctx context.Context, c *DB, sub, rg string, hash []byte, expires time.Time, by Actor) (EnrollmentToken, error) {
	if len(hash) < 32 {
		return EnrollmentToken{}, Invalid("InvalidParameter", "token", "An enrollment token hash is required.")
	}
	id, err := c.newGUID()
	if err != nil {
		return EnrollmentToken{}, err
	}
	var out EnrollmentToken
	err = c.inTx(ctx, func(r run) error {
		g, err := requireResourceGroup(ctx, r, sub, rg)
		if err != nil {
			return err
		}
		now := c.nowUTC()
		if !expires.After(now) {
			return Invalid("InvalidParameter", "expires", "An enrollment token must expire in the future.")
		}
		// tokenTable and keyColumn are constants of the kind, never input.
		_, err = r.exec(ctx, `INSERT INTO `+e.tokenTable+` (token_hash, id, rg_key, expires_at, used_at, `+e.keyColumn+`, created_at,
			created_by, created_by_type) VALUES (?, ?, ?, ?, '', '', ?, ?, ?)`, hash, id, key(g.ID()), fmtTime(expires),
			fmtTime(now), by.ID, by.Type)
		if err != nil {
			return fmt.Errorf("create %s enrollment token: %w", e.what, err)
		}
		out = EnrollmentToken{ID: id, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, Expires: expires.UTC(), Created: now}
		return nil
	})
	return out, err
}

// subOrRGFilter returns the WHERE condition and its argument that select
// the rows (table alias t, with sub_key and rg_key columns) of a
// subscription, or of one of its resource groups when rg is not empty,
// after checking that the subscription or resource group exists.
func subOrRGFilter(ctx context.Context, r run, t, sub, rg string) (where string, arg any, err error) {
	if rg == "" {
		if _, err := getSubscription(ctx, r, sub); err != nil {
			return "", nil, err
		}
		return t + `.sub_key = ?`, key(sub), nil
	}
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return "", nil, err
	}
	return t + `.rg_key = ?`, key(ResourceGroupResourceID(sub, rg)), nil
}

// deleteGuarded is the delete of an ETag-guarded resource in one
// transaction: get loads its ETag (ErrNotFound: absent), pre is checked
// against it (If-Match, If-None-Match), and del removes it when it exists.
// It reports false when there was nothing to delete.
func (c *DB) deleteGuarded(ctx context.Context, pre Precondition, get func(r run) (etag string, err error), del func(r run) error) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		etag, err := get(r)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, etag); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		if err := del(r); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// associatedRules returns the data collection rules that associations name
// (ruleIDs, in order, each once); rules deleted since are left out.
func associatedRules(ctx context.Context, r run, ruleIDs []string) ([]DataCollectionRule, error) {
	out := []DataCollectionRule{}
	seen := map[string]bool{}
	for _, id := range ruleIDs {
		k := key(id)
		if seen[k] {
			continue
		}
		seen[k] = true
		dsub, drg, dname, ok := ParseDataCollectionRuleResourceID(id)
		if !ok {
			continue
		}
		d, err := getDataCollectionRule(ctx, r, dsub, drg, dname)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
