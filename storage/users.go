package storage

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// PutUser records a user the server has seen, creating or updating it by
// id, and indexes its name for UserByName. Names are matched exactly; when
// two users share a name, the index points at the one put last. It blocks
// until the write is durable.
func (db *DB) PutUser(ctx context.Context, u doc.User) error {
	if err := checkID("user id", u.ID); err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	if len(u.Name) > maxIDLen {
		return fmt.Errorf("put user %q: name of %d bytes: %w", u.ID, len(u.Name), ErrInvalid)
	}
	val, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("put user %q: %w", u.ID, err)
	}
	return db.update(ctx, func(w *writeTx) error {
		users, names := w.tx.Bucket(bucketUsers), w.tx.Bucket(bucketUserNames)
		var old doc.User
		if v := users.Get([]byte(u.ID)); v != nil {
			if err := json.Unmarshal(v, &old); err != nil {
				return corrupt(fmt.Sprintf("user %q", u.ID), err)
			}
		}
		if old.Name != "" && old.Name != u.Name && string(names.Get([]byte(old.Name))) == u.ID {
			if err := names.Delete([]byte(old.Name)); err != nil {
				return abort(err)
			}
		}
		if u.Name != "" {
			if err := names.Put([]byte(u.Name), []byte(u.ID)); err != nil {
				return abort(err)
			}
		}
		return abort(users.Put([]byte(u.ID), val))
	})
}

// GetUser returns the user with the given id and whether there is one.
func (db *DB) GetUser(id string) (doc.User, bool, error) {
	var u doc.User
	var found bool
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		u, found, err = getUser(tx, id)
		return err
	})
	return u, found, err
}

// UserByName returns the user last put with exactly this name and whether
// there is one.
func (db *DB) UserByName(name string) (doc.User, bool, error) {
	var u doc.User
	var found bool
	err := db.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketUserNames).Get([]byte(name))
		if id == nil || name == "" {
			return nil
		}
		var err error
		u, found, err = getUser(tx, string(id))
		return err
	})
	return u, found, err
}

// getUser reads one user.
func getUser(tx *bolt.Tx, id string) (doc.User, bool, error) {
	var u doc.User
	if id == "" {
		return u, false, nil
	}
	v := tx.Bucket(bucketUsers).Get([]byte(id))
	if v == nil {
		return u, false, nil
	}
	if err := json.Unmarshal(v, &u); err != nil {
		return u, false, corrupt(fmt.Sprintf("user %q", id), err)
	}
	return u, true, nil
}
