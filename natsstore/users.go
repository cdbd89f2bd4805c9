package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandemhq/tandem/doc"
)

// receipts is a channel's read receipts, kept in the receipts bucket under
// the channel, for one epoch: offsets of another epoch mean nothing.
type receipts struct {
	Epoch string            `json:"epoch"`
	Users map[string]uint64 `json:"users"`
}

// currentEpoch returns a channel's epoch without creating one: the last
// message's, else the epoch record's, else "".
func (s *Store) currentEpoch(ctx context.Context, c *chanRef) (string, error) {
	h, err := s.chanHead(ctx, c)
	if err != nil {
		return "", err
	}
	if !h.isMsg && h.stale(c, s.cfg.Now()) {
		return "", nil // the epoch's messages are gone; the next one starts anew
	}
	return h.epoch, nil
}

// SetReceipt records that user has read channel up to offset, in the
// channel's current epoch. A receipt only moves forward: a lower offset
// changes nothing. Concurrent receipts from several nodes are merged by
// compare-and-set on the channel's receipts.
func (s *Store) SetReceipt(ctx context.Context, user, channel string, offset uint64) error {
	if err := checkID("user id", user); err != nil {
		return fmt.Errorf("set receipt: %w", err)
	}
	c, ok, err := s.chanRef(channel)
	if err != nil {
		return fmt.Errorf("set receipt: %w", err)
	}
	if !ok {
		return fmt.Errorf("set receipt on %q: its namespace keeps no history: %w", channel, ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.RequestTimeout)
	defer cancel()
	epoch, err := s.currentEpoch(ctx, c)
	if err != nil {
		return fmt.Errorf("set receipt: %w", err)
	}
	key := encode(channel)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		var rc receipts
		var rev uint64
		e, err := s.kvGet(ctx, s.kvRcpt, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("set receipt: %w", err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &rc); err != nil {
				return corrupt(fmt.Sprintf("receipts of %q", channel), err)
			}
		}
		if rc.Epoch != epoch || rc.Users == nil {
			rc = receipts{Epoch: epoch, Users: map[string]uint64{}}
		}
		if rc.Users[user] >= offset && rev != 0 {
			return nil
		}
		rc.Users[user] = max(rc.Users[user], offset)
		val, err := json.Marshal(rc)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = s.kvCreate(ctx, s.kvRcpt, key, val)
		} else {
			_, err = s.kvUpdate(ctx, s.kvRcpt, key, val, rev)
		}
		if err == nil {
			return nil
		}
		if !isRevMismatch(err) {
			return fmt.Errorf("set receipt: %w", err)
		}
		s.count(func(st *Stats) { st.CASRetries++ })
		if attempt > 2 {
			backoff(ctx, min(attempt/4, 4))
		}
	}
	return fmt.Errorf("set receipt on %q: %w", channel, ErrContended)
}

// Receipts returns every user's read receipt in channel's current epoch.
func (s *Store) Receipts(channel string) (map[string]uint64, error) {
	out := map[string]uint64{}
	c, ok, err := s.chanRef(channel)
	if err != nil || !ok {
		return out, err
	}
	ctx, cancel := s.reqCtx(context.Background())
	defer cancel()
	e, err := s.kvGet(ctx, s.kvRcpt, encode(channel))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("receipts of %q: %w", channel, err)
	}
	var rc receipts
	if err := json.Unmarshal(e.Value(), &rc); err != nil {
		return nil, corrupt(fmt.Sprintf("receipts of %q", channel), err)
	}
	epoch, err := s.currentEpoch(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("receipts of %q: %w", channel, err)
	}
	if rc.Epoch != epoch {
		return out, nil
	}
	for u, o := range rc.Users {
		out[u] = o
	}
	return out, nil
}

// PutUser records a user, creating or updating it by id, and indexes its
// name for UserByName (exact match; when two users share a name the index
// points at the one put last).
func (s *Store) PutUser(ctx context.Context, u doc.User) error {
	if err := checkID("user id", u.ID); err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	if len(u.Name) > maxIDLen {
		return fmt.Errorf("put user %q: name of %d bytes: %w", u.ID, len(u.Name), ErrInvalid)
	}
	if s.isClosed() {
		return ErrClosed
	}
	val, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("put user %q: %w", u.ID, err)
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	old, found, err := s.getUser(ctx, u.ID)
	if err != nil {
		return err
	}
	if _, err := s.kvPut(ctx, s.kvUsers, encode(u.ID), val); err != nil {
		return fmt.Errorf("put user %q: %w", u.ID, err)
	}
	if u.Name != "" {
		if _, err := s.kvPut(ctx, s.kvNames, encode(u.Name), []byte(u.ID)); err != nil {
			return fmt.Errorf("put user %q name: %w", u.ID, err)
		}
	}
	if found && old.Name != "" && old.Name != u.Name {
		// Drop the old name's index entry if it still points here.
		if e, err := s.kvGet(ctx, s.kvNames, encode(old.Name)); err == nil && string(e.Value()) == u.ID {
			_ = s.kvNames.Delete(ctx, encode(old.Name), jetstream.LastRevision(e.Revision()))
		}
	}
	return nil
}

// GetUser returns the user with the given id and whether there is one.
func (s *Store) GetUser(id string) (doc.User, bool, error) {
	if id == "" {
		return doc.User{}, false, nil
	}
	ctx, cancel := s.reqCtx(context.Background())
	defer cancel()
	return s.getUser(ctx, id)
}

func (s *Store) getUser(ctx context.Context, id string) (doc.User, bool, error) {
	var u doc.User
	if err := checkID("user id", id); err != nil {
		return u, false, err
	}
	e, err := s.kvGet(ctx, s.kvUsers, encode(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return u, false, nil
	}
	if err != nil {
		return u, false, fmt.Errorf("user %q: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &u); err != nil {
		return u, false, corrupt(fmt.Sprintf("user %q", id), err)
	}
	return u, true, nil
}

// UserByName returns the user last put with exactly this name and whether
// there is one.
func (s *Store) UserByName(name string) (doc.User, bool, error) {
	if name == "" || len(name) > maxIDLen {
		return doc.User{}, false, nil
	}
	ctx, cancel := s.reqCtx(context.Background())
	defer cancel()
	e, err := s.kvGet(ctx, s.kvNames, encode(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return doc.User{}, false, nil
	}
	if err != nil {
		return doc.User{}, false, fmt.Errorf("user named %q: %w", name, err)
	}
	u, ok, err := s.getUser(ctx, string(e.Value()))
	if err != nil || !ok || u.Name != name {
		return doc.User{}, false, err
	}
	return u, true, nil
}
