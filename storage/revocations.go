package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketRevoked holds revoked tokens and users (see doc.go): keys are a
// kind byte then the token id or user id.
var bucketRevoked = []byte("revoked")

// Kinds of entry in the revoked bucket.
const (
	revokedToken = 't' // t<token id> → be64 Unix nanoseconds of the token's expiry, 0: never
	revokedUser  = 'u' // u<user id>  → be64 Unix seconds: tokens issued at or before it are revoked
)

// RevokeToken records that the token with this id (its jti, or a digest of
// the token) is revoked until it expires at until; a zero until keeps the
// entry for good (a token without exp). Entries of tokens that expired
// before now are dropped in the same transaction, so the bucket holds only
// tokens that could still be presented. It blocks until the write is
// durable.
func (db *DB) RevokeToken(ctx context.Context, tokenID string, until time.Time) error {
	if err := checkID("token id", tokenID); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	var exp uint64
	if !until.IsZero() {
		exp = uint64(max(until.UnixNano(), 1))
	}
	return db.update(ctx, func(w *writeTx) error {
		b := w.tx.Bucket(bucketRevoked)
		if _, err := pruneRevoked(b, w.now); err != nil {
			return abort(err)
		}
		return abort(b.Put(revokedKey(revokedToken, tokenID), be64(exp)))
	})
}

// RevokeUser records that every token of user issued at or before the
// second of before is revoked. A revocation never moves back: when an
// earlier call recorded a later time, that time stays. It blocks until the
// write is durable.
func (db *DB) RevokeUser(ctx context.Context, userID string, before time.Time) error {
	if err := checkID("user id", userID); err != nil {
		return fmt.Errorf("revoke user: %w", err)
	}
	if before.Unix() < 0 {
		return fmt.Errorf("revoke user %q: time %s before 1970: %w", userID, before, ErrInvalid)
	}
	return db.update(ctx, func(w *writeTx) error {
		b := w.tx.Bucket(bucketRevoked)
		key := revokedKey(revokedUser, userID)
		secs := uint64(before.Unix())
		if old, ok := unbe64(b.Get(key)); ok && old >= secs {
			return nil
		}
		return abort(b.Put(key, be64(secs)))
	})
}

// Revocations returns every revocation: revoked tokens by id with their
// expiry (zero: never), leaving out those that expired before now, and
// revoked users with the time at or before which their tokens were issued.
func (db *DB) Revocations(now time.Time) (tokens, users map[string]time.Time, err error) {
	tokens, users = make(map[string]time.Time), make(map[string]time.Time)
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevoked).ForEach(func(k, v []byte) error {
			n, ok := unbe64(v)
			if len(k) < 2 || !ok {
				return corrupt(fmt.Sprintf("revoked %q", k), fmt.Errorf("%d-byte value", len(v)))
			}
			switch k[0] {
			case revokedToken:
				var exp time.Time
				if n != 0 {
					if exp = time.Unix(0, int64(n)); exp.Before(now) {
						return nil
					}
				}
				tokens[string(k[1:])] = exp
			case revokedUser:
				users[string(k[1:])] = time.Unix(int64(n), 0)
			default:
				return corrupt(fmt.Sprintf("revoked %q", k), fmt.Errorf("unknown kind %q", k[0]))
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return tokens, users, nil
}

// PruneRevocations drops the entries of revoked tokens that expired before
// now and returns how many it dropped. Revoked users are kept.
func (db *DB) PruneRevocations(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.update(ctx, func(w *writeTx) error {
		var err error
		n, err = pruneRevoked(w.tx.Bucket(bucketRevoked), now)
		return abort(err)
	})
	return n, err
}

// pruneRevoked deletes the token entries that expired before now. Errors
// are bbolt's (an abort).
func pruneRevoked(b *bolt.Bucket, now time.Time) (int, error) {
	var dead [][]byte
	prefix := []byte{revokedToken}
	c := b.Cursor()
	for k, v := c.Seek(prefix); len(k) > 0 && k[0] == revokedToken; k, v = c.Next() {
		if n, ok := unbe64(v); ok && n != 0 && time.Unix(0, int64(n)).Before(now) {
			dead = append(dead, bytes.Clone(k))
		}
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}

// revokedKey is the key of a revocation of kind for id.
func revokedKey(kind byte, id string) []byte {
	return append([]byte{kind}, id...)
}
