package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// HistoryLimit bounds a channel's stored history; see [doc.HistoryLimit].
type HistoryLimit = doc.HistoryLimit

// chanState is the JSON part of channels/<name>, after the channel's
// number.
type chanState struct {
	// Epoch is a random id made with the channel's first message, or
	// given by EnsureChannelAsync at its first subscribe. Offsets
	// are meaningful only within one epoch: a new epoch means the history
	// was lost and numbering restarted from 1.
	Epoch string `json:"epoch"`
	// First is the oldest offset still stored (Last+1 when everything was
	// trimmed); Last the newest offset ever appended.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// chanRef is a channel's place in the buckets, within one transaction. Like
// a document, a channel gets a number with its first message (or with the
// epoch EnsureChannelAsync gives it), and its messages are keyed
// msgs/<be64 number><be64 offset>.
type chanRef struct {
	name string
	num  uint64
	st   chanState
}

// lookupChan finds a channel, or returns nil when it has no history.
func lookupChan(tx *bolt.Tx, name string) (*chanRef, error) {
	v := tx.Bucket(bucketChannels).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	c := &chanRef{name: name}
	if len(v) < 8 {
		return nil, corrupt(fmt.Sprintf("channel %q", name), fmt.Errorf("%d bytes", len(v)))
	}
	c.num = binary.BigEndian.Uint64(v)
	if err := json.Unmarshal(v[8:], &c.st); err != nil {
		return nil, corrupt(fmt.Sprintf("channel %q state", name), err)
	}
	return c, nil
}

// put stores the channel's state.
func (c *chanRef) put(tx *bolt.Tx) error {
	js, err := json.Marshal(c.st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketChannels).Put([]byte(c.name), append(be64(c.num), js...))
}

// key returns the key of message offset.
func (c *chanRef) key(offset uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, c.num)
	binary.BigEndian.PutUint64(k[8:], offset)
	return k
}

// receiptPrefix returns the prefix of a channel's receipt keys: the
// channel's length as a uvarint, then the channel, so that no channel's
// prefix is another's.
func receiptPrefix(channel string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(channel)))
	return append(k, channel...)
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
	c, err := lookupChan(w.tx, msg.Channel)
	if err != nil {
		return err
	}
	next := uint64(1)
	if c != nil {
		next = c.st.Last + 1
	}
	if msg.Offset != next {
		return fmt.Errorf("append message to %q: %w", msg.Channel, &ConflictError{Key: msg.Channel, Have: next, Got: msg.Offset})
	}

	if c == nil {
		num, err := w.tx.Bucket(bucketChannels).NextSequence()
		if err != nil {
			return abort(err)
		}
		c = &chanRef{name: msg.Channel, num: num, st: chanState{Epoch: randomID(), First: 1}}
	}
	msgs := w.tx.Bucket(bucketMsgs)
	if err := msgs.Put(c.key(msg.Offset), val); err != nil {
		return abort(err)
	}
	st := &c.st
	st.Last = msg.Offset
	if limits.MaxCount > 0 {
		for st.Last-st.First+1 > uint64(limits.MaxCount) {
			if err := msgs.Delete(c.key(st.First)); err != nil {
				return abort(err)
			}
			st.First++
		}
	}
	if limits.MaxAge > 0 {
		cutoff := w.now.Add(-limits.MaxAge).UnixNano()
		for st.First <= st.Last {
			v := msgs.Get(c.key(st.First))
			if len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) >= cutoff {
				break
			}
			if err := msgs.Delete(c.key(st.First)); err != nil {
				return abort(err)
			}
			st.First++
		}
	}
	return abort(c.put(w.tx))
}

// maxEpochLen bounds an epoch given to EnsureChannelAsync.
const maxEpochLen = 64

// EnsureChannelAsync gives channel an epoch if it has none yet: it stores a
// channel record with no messages (last offset 0) and that epoch. A channel
// that has a record already keeps it. The write goes through the group
// commit like an append, so that many new channels share one transaction and
// one fsync; done reports, once the record is durable, the epoch the channel
// has (epoch, or the one it had before). done follows the rules of
// [DB.AppendOpAsync]: called exactly once, possibly before the call returns
// when the database is closed, and must not block. The first message of the
// channel (AppendMessage) then keeps that epoch.
func (db *DB) EnsureChannelAsync(channel, epoch string, done func(stored string, err error)) {
	if err := checkID("channel", channel); err != nil {
		done("", fmt.Errorf("ensure channel: %w", err))
		return
	}
	if epoch == "" || len(epoch) > maxEpochLen || !utf8.ValidString(epoch) {
		done("", fmt.Errorf("ensure channel %q: epoch must be 1 to %d bytes of UTF-8: %w", channel, maxEpochLen, ErrInvalid))
		return
	}
	var stored string // set by the write; read by the completion, after it
	db.commits.submit(func(w *writeTx) error {
		c, err := lookupChan(w.tx, channel)
		if err != nil {
			return err
		}
		if c != nil {
			stored = c.st.Epoch
			return nil
		}
		num, err := w.tx.Bucket(bucketChannels).NextSequence()
		if err != nil {
			return abort(err)
		}
		c = &chanRef{name: channel, num: num, st: chanState{Epoch: epoch, First: 1}}
		stored = epoch
		return abort(c.put(w.tx))
	}, func(err error) {
		if err != nil {
			done("", fmt.Errorf("ensure channel %q: %w", channel, err))
			return
		}
		done(stored, nil)
	})
}

// ChannelState returns a channel's last offset and epoch; 0 and "" for a
// channel that has no record (neither a message nor an ensured epoch).
func (db *DB) ChannelState(channel string) (lastOffset uint64, epoch string, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		c, err := lookupChan(tx, channel)
		if c != nil {
			lastOffset, epoch = c.st.Last, c.st.Epoch
		}
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
		ch, err := lookupChan(tx, channel)
		if err != nil || ch == nil {
			return err
		}
		pfx := be64(ch.num)
		c := tx.Bucket(bucketMsgs).Cursor()
		for k, v := c.Seek(ch.key(offset + 1)); bytes.HasPrefix(k, pfx) && (limit <= 0 || len(out) < limit); k, v = c.Next() {
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
		c, err := lookupChan(w.tx, channel)
		if err != nil {
			return err
		}
		var v []byte
		if c != nil {
			v = w.tx.Bucket(bucketMsgs).Get(c.key(offset))
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
		return abort(w.tx.Bucket(bucketMsgs).Put(c.key(offset), val))
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
		k := append(receiptPrefix(channel), user...)
		if cur, ok := unbe64(rb.Get(k)); ok && cur >= offset {
			return nil
		}
		return abort(rb.Put(k, be64(offset)))
	})
}

// Receipts returns every user's read receipt in channel.
func (db *DB) Receipts(channel string) (map[string]uint64, error) {
	out := make(map[string]uint64)
	err := db.view(func(tx *bolt.Tx) error {
		pfx := receiptPrefix(channel)
		c := tx.Bucket(bucketReceipts).Cursor()
		for k, v := c.Seek(pfx); bytes.HasPrefix(k, pfx); k, v = c.Next() {
			off, ok := unbe64(v)
			if !ok {
				return corrupt("receipt", fmt.Errorf("%d bytes", len(v)))
			}
			out[string(k[len(pfx):])] = off
		}
		return nil
	})
	return out, err
}
