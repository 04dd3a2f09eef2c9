package activity

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrTampered is wrapped by the *ChainError that Verify returns when the
// chain or a checkpoint does not hold.
var ErrTampered = errors.New("activity log tampered")

// ChainError names the first record (or checkpoint) that fails verification.
type ChainError struct {
	Seq int64  // sequence number of the first bad record
	Msg string // what is wrong with it
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("activity log record %d: %s", e.Seq, e.Msg)
}

// Unwrap makes errors.Is(err, ErrTampered) true.
func (e *ChainError) Unwrap() error { return ErrTampered }

// Report is the result of a successful Verify.
type Report struct {
	Records     int64 // records checked
	LastSeq     int64
	LastHash    string
	Checkpoints int // checkpoints whose signature and hash were checked
}

// Verify walks the whole chain and every checkpoint. It returns a
// *ChainError (wrapping ErrTampered) naming the first bad record when a
// record was modified (its hash no longer matches), deleted (a gap in the
// sequence, or a broken link), reordered (hashes bind each record to its
// sequence number), or truncated from the end (a signed checkpoint beyond
// the head); and when a checkpoint's signature, key or hash is wrong. Other
// errors are I/O failures. keys must be the platform key the signing keys
// were sealed with: a public key is trusted only if the sealed private key
// unseals and matches it.
func Verify(ctx context.Context, st Store, keys Sealer) (Report, error) {
	pubs := map[string]ed25519.PublicKey{}
	ks, err := st.ActivityKeys(ctx)
	if err != nil {
		return Report{}, err
	}
	for _, k := range ks {
		seed, err := keys.Open(k.Sealed, keyAAD(k.KeyID))
		if err != nil || len(seed) != ed25519.SeedSize {
			return Report{}, &ChainError{Seq: 0, Msg: fmt.Sprintf("signing key %s does not unseal with the platform key", k.KeyID)}
		}
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		clear(seed)
		if subtle.ConstantTimeCompare(pub, k.PublicKey) != 1 {
			return Report{}, &ChainError{Seq: 0, Msg: fmt.Sprintf("signing key %s: stored public key does not match the sealed key", k.KeyID)}
		}
		pubs[k.KeyID] = pub
	}
	cps, err := st.ActivityCheckpoints(ctx)
	if err != nil {
		return Report{}, err
	}
	want := map[int64]string{}
	for _, cp := range cps {
		pub, ok := pubs[cp.KeyID]
		if !ok {
			return Report{}, &ChainError{Seq: cp.Seq, Msg: fmt.Sprintf("checkpoint signed by unknown key %q", cp.KeyID)}
		}
		if !ed25519.Verify(pub, checkpointMessage(cp.Seq, cp.Hash, cp.SignedAt), cp.Signature) {
			return Report{}, &ChainError{Seq: cp.Seq, Msg: "checkpoint signature does not verify"}
		}
		want[cp.Seq] = cp.Hash
	}

	var rep Report
	prevHash := genesisHash
	var prevSeq int64
	for {
		page, err := st.ActivityEntries(ctx, prevSeq, 1000)
		if err != nil {
			return rep, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Seq != prevSeq+1 {
				return rep, &ChainError{Seq: prevSeq + 1, Msg: fmt.Sprintf("record is missing (next stored record is %d): deleted", e.Seq)}
			}
			if e.PrevHash != prevHash && !(prevSeq == 0 && e.PrevHash == "") {
				return rep, &ChainError{Seq: e.Seq, Msg: "link to the previous record is broken: a record before it was changed or removed"}
			}
			h, err := chainHash(prevHash, e.Seq, e.Record)
			if err != nil {
				return rep, &ChainError{Seq: e.Seq, Msg: err.Error()}
			}
			if subtle.ConstantTimeCompare([]byte(h), []byte(e.Hash)) != 1 {
				return rep, &ChainError{Seq: e.Seq, Msg: "hash does not match the content: the record was modified or moved"}
			}
			if !json.Valid(e.Record) {
				return rep, &ChainError{Seq: e.Seq, Msg: "record is not valid JSON"}
			}
			if w, ok := want[e.Seq]; ok {
				if w != e.Hash {
					return rep, &ChainError{Seq: e.Seq, Msg: "hash differs from the signed checkpoint: the chain was rewritten"}
				}
				rep.Checkpoints++
				delete(want, e.Seq)
			}
			prevSeq, prevHash = e.Seq, e.Hash
			rep.Records++
		}
	}
	rep.LastSeq, rep.LastHash = prevSeq, prevHash
	if rep.Records == 0 {
		rep.LastHash = ""
	}
	for seq := range want {
		if seq > prevSeq {
			return rep, &ChainError{Seq: prevSeq + 1, Msg: fmt.Sprintf("records %d to %d are missing: a signed checkpoint covers them", prevSeq+1, seq)}
		}
	}
	return rep, nil
}
