package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// HistoryLimit bounds a channel's stored history; see [doc.HistoryLimit].
type HistoryLimit = doc.HistoryLimit

// chanState is the JSON value under channels/<name>/state.
type chanState struct {
	// Epoch is a random id made with the channel's first message. Offsets
	// are meaningful only within one epoch: a new epoch means the history
	// was lost and numbering restarted from 1.
	Epoch string `json:"epoch"`
	// First is the oldest offset still stored (Last+1 when everything was
	// trimmed); Last the newest offset ever appended.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// readState decodes a channel's state.
func readState(cb *bolt.Bucket) (chanState, error) {
	var st chanState
	if err := json.Unmarshal(cb.Get(keyState), &st); err != nil {
		return st, corrupt("channel state", err)
	}
	return st, nil
}

// AppendMessage appends msg to its channel's history and returns once it is
// durable. msg.Offset must be the channel's last offset plus one (1 for a new
// channel), else it fails with ErrConflict (a [*ConflictError]) and writes
// nothing. In the same transaction the history is trimmed to limits: the
// oldest messages beyond MaxCount, and those older than MaxAge, are deleted
// (the offsets keep counting). A zero msg.Time is set to now. If ctx ends
// first AppendMessage returns ctx's error, and the message may still commit.
func (db *DB) AppendMessage(ctx context.Context, msg doc.Message, limits HistoryLimit) error {
	ch := make(chan error, 1)
	db.AppendMessageAsync(msg, limits, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("append message %d to %q: %w (it may still commit)", msg.Offset, msg.Channel, ctx.Err())
	}
}

// AppendMessageAsync is AppendMessage that returns at once and reports the
// outcome to done, through the same group commit as op appends, with the
// same ordering guarantee and rules for done as [DB.AppendOpAsync].
func (db *DB) AppendMessageAsync(msg doc.Message, limits HistoryLimit, done func(error)) {
	if err := checkID("channel", msg.Channel); err != nil {
		done(fmt.Errorf("append message: %w", err))
		return
	}
	if msg.Offset == 0 || msg.Retracted {
		done(fmt.Errorf("append message %d to %q: offset 0 or already retracted: %w", msg.Offset, msg.Channel, ErrInvalid))
		return
	}
	if msg.Time.IsZero() {
		msg.Time = db.cfg.Now().UTC()
	}
	val, err := encodeMessage(msg)
	if err != nil {
		done(fmt.Errorf("append message %d to %q: %v: %w", msg.Offset, msg.Channel, err, ErrInvalid))
		return
	}
	db.commits.submit(func(w *writeTx) error { return appendMessage(w, msg, val, limits) }, done)
}

// encodeMessage returns a message's stored form: its time in Unix
// nanoseconds (8 bytes, big-endian), so that trimming by age reads no JSON,
// then its JSON.
func encodeMessage(msg doc.Message) ([]byte, error) {
	js, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	val := make([]byte, 8, 8+len(js))
	binary.BigEndian.PutUint64(val, uint64(msg.Time.UnixNano()))
	return append(val, js...), nil
}

// decodeMessage decodes a stored message.
func decodeMessage(v []byte) (doc.Message, error) {
	var msg doc.Message
	if len(v) < 8 {
		return msg, corrupt("message", fmt.Errorf("%d bytes", len(v)))
	}
	if err := json.Unmarshal(v[8:], &msg); err != nil {
		return msg, corrupt("message", err)
	}
	return msg, nil
}

// appendMessage is the write of one message.
func appendMessage(w *writeTx, msg doc.Message, val []byte, limits HistoryLimit) error {
	chans := w.tx.Bucket(bucketChannels)
	name := []byte(msg.Channel)
	cb := chans.Bucket(name)
	st := chanState{First: 1}
	if cb != nil {
		var err error
		if st, err = readState(cb); err != nil {
			return err
		}
	}
	if msg.Offset != st.Last+1 {
		return fmt.Errorf("append message to %q: %w", msg.Channel, &ConflictError{Key: msg.Channel, Have: st.Last + 1, Got: msg.Offset})
	}

	if cb == nil {
		var err error
		if cb, err = chans.CreateBucket(name); err != nil {
			return abort(err)
		}
		if _, err := cb.CreateBucket(bucketMsgs); err != nil {
			return abort(err)
		}
		st.Epoch = randomID()
	}
	msgs := cb.Bucket(bucketMsgs)
	if err := msgs.Put(be64(msg.Offset), val); err != nil {
		return abort(err)
	}
	st.Last = msg.Offset
	if limits.MaxCount > 0 {
		for st.Last-st.First+1 > uint64(limits.MaxCount) {
			if err := msgs.Delete(be64(st.First)); err != nil {
				return abort(err)
			}
			st.First++
		}
	}
	if limits.MaxAge > 0 {
		cutoff := w.now.Add(-limits.MaxAge).UnixNano()
		for st.First <= st.Last {
			v := msgs.Get(be64(st.First))
			if len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) >= cutoff {
				break
			}
			if err := msgs.Delete(be64(st.First)); err != nil {
				return abort(err)
			}
			st.First++
		}
	}
	sv, err := json.Marshal(st)
	if err != nil {
		return abort(err)
	}
	return abort(cb.Put(keyState, sv))
}

// ChannelState returns a channel's last offset and epoch; 0 and "" for a
// channel that has no history.
func (db *DB) ChannelState(channel string) (lastOffset uint64, epoch string, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketChannels).Bucket([]byte(channel))
		if cb == nil {
			return nil
		}
		st, err := readState(cb)
		lastOffset, epoch = st.Last, st.Epoch
		return err
	})
	return lastOffset, epoch, err
}

// MessagesSince returns up to limit messages of channel with offsets above
// offset, oldest first; limit <= 0 means all. Trimmed messages are gone: the
// first message returned may be past offset+1. Retracted messages come as
// tombstones.
func (db *DB) MessagesSince(channel string, offset uint64, limit int) ([]doc.Message, error) {
	var out []doc.Message
	err := db.view(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketChannels).Bucket([]byte(channel))
		if cb == nil {
			return nil
		}
		c := cb.Bucket(bucketMsgs).Cursor()
		for k, v := c.Seek(be64(offset + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			msg, err := decodeMessage(v)
			if err != nil {
				return err
			}
			out = append(out, msg)
		}
		return nil
	})
	return out, err
}

// Retract replaces message offset of channel with a tombstone that keeps
// its offset, time, author and event and records by; its data is dropped.
// Retracting a tombstone again changes nothing. It fails with ErrNotFound
// when the message is not stored (never appended or trimmed). It blocks
// until the write is durable.
func (db *DB) Retract(ctx context.Context, channel string, offset uint64, by string) error {
	return db.update(ctx, func(w *writeTx) error {
		cb := w.tx.Bucket(bucketChannels).Bucket([]byte(channel))
		var v []byte
		if cb != nil {
			v = cb.Bucket(bucketMsgs).Get(be64(offset))
		}
		if v == nil {
			return fmt.Errorf("retract message %d of %q: %w", offset, channel, ErrNotFound)
		}
		msg, err := decodeMessage(v)
		if err != nil {
			return err
		}
		if msg.Retracted {
			return nil
		}
		msg.Retracted, msg.RetractedBy, msg.Data = true, by, nil
		val, err := encodeMessage(msg)
		if err != nil {
			return err
		}
		return abort(cb.Bucket(bucketMsgs).Put(be64(offset), val))
	})
}

// SetReceipt records that user has read channel up to offset. The stored
// receipt only moves forward: a lower offset changes nothing. It blocks
// until the write is durable.
func (db *DB) SetReceipt(ctx context.Context, user, channel string, offset uint64) error {
	if err := checkID("user id", user); err != nil {
		return fmt.Errorf("set receipt: %w", err)
	}
	if err := checkID("channel", channel); err != nil {
		return fmt.Errorf("set receipt: %w", err)
	}
	return db.update(ctx, func(w *writeTx) error {
		rb := w.tx.Bucket(bucketReceipts)
		if cb := rb.Bucket([]byte(channel)); cb != nil {
			if cur, ok := unbe64(cb.Get([]byte(user))); ok && cur >= offset {
				return nil
			}
		}
		cb, err := rb.CreateBucketIfNotExists([]byte(channel))
		if err != nil {
			return abort(err)
		}
		return abort(cb.Put([]byte(user), be64(offset)))
	})
}

// Receipts returns every user's read receipt in channel.
func (db *DB) Receipts(channel string) (map[string]uint64, error) {
	out := make(map[string]uint64)
	err := db.view(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketReceipts).Bucket([]byte(channel))
		if cb == nil {
			return nil
		}
		return cb.ForEach(func(k, v []byte) error {
			off, ok := unbe64(v)
			if !ok {
				return corrupt("receipt", fmt.Errorf("%d bytes", len(v)))
			}
			out[string(k)] = off
			return nil
		})
	})
	return out, err
}
