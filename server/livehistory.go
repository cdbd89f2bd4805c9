package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/storage"
)

// liveHistory is the hub's channel history: storage's for every channel,
// except the channels that carry figures only live charts draw (the
// server's own system:stats), whose history it keeps in memory. A
// dashboard opening (or reconnecting) still recovers the last messages,
// within the namespace's limits, but publishing them writes nothing, so an
// idle server does no disk writes. Their history starts afresh, in a new
// epoch, when the server restarts.
type liveHistory struct {
	session.ChannelHistory // storage, for every other channel

	live  map[string]bool // the channels kept in memory; fixed at creation
	epoch string          // this process's epoch for them
	now   func() time.Time

	mu    sync.Mutex
	chans map[string]*liveChannel // guarded by mu
}

// liveChannel is one in-memory history.
type liveChannel struct {
	last uint64
	msgs []doc.Message // oldest first, offsets consecutive up to last
}

// newLiveHistory keeps the history of the channels named in memory and
// passes every other channel to stored.
func newLiveHistory(stored session.ChannelHistory, channels ...string) *liveHistory {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	h := &liveHistory{ChannelHistory: stored, live: map[string]bool{}, epoch: "live-" + hex.EncodeToString(b[:]),
		now: time.Now, chans: map[string]*liveChannel{}}
	for _, c := range channels {
		h.live[c] = true
	}
	return h
}

var _ session.ChannelHistory = (*liveHistory)(nil)

// AppendMessageAsync keeps msg in memory for a live channel, trims that
// history to limits and calls done at once; other channels go to storage.
func (h *liveHistory) AppendMessageAsync(msg doc.Message, limits doc.HistoryLimit, done func(error)) {
	if !h.live[msg.Channel] {
		h.ChannelHistory.AppendMessageAsync(msg, limits, done)
		return
	}
	h.mu.Lock()
	c := h.chans[msg.Channel]
	if c == nil {
		c = &liveChannel{}
		h.chans[msg.Channel] = c
	}
	if msg.Offset != c.last+1 {
		h.mu.Unlock()
		done(fmt.Errorf("append message to %q: %w", msg.Channel, &storage.ConflictError{Key: msg.Channel, Have: c.last + 1, Got: msg.Offset}))
		return
	}
	c.last = msg.Offset
	c.msgs = append(c.msgs, msg)
	drop := 0
	if limits.MaxCount > 0 {
		drop = max(0, len(c.msgs)-limits.MaxCount)
	}
	if limits.MaxAge > 0 {
		oldest := h.now().Add(-limits.MaxAge)
		for drop < len(c.msgs) && c.msgs[drop].Time.Before(oldest) {
			drop++
		}
	}
	if drop > 0 {
		c.msgs = append(c.msgs[:0:0], c.msgs[drop:]...)
	}
	h.mu.Unlock()
	done(nil)
}

// ChannelState returns a live channel's last offset and this process's
// epoch (0 and "" before its first message).
func (h *liveHistory) ChannelState(channel string) (uint64, string, error) {
	if !h.live[channel] {
		return h.ChannelHistory.ChannelState(channel)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.chans[channel]
	if c == nil || c.last == 0 {
		return 0, "", nil
	}
	return c.last, h.epoch, nil
}

// MessagesSince returns up to limit messages of a live channel after
// offset (limit <= 0: all).
func (h *liveHistory) MessagesSince(channel string, offset uint64, limit int) ([]doc.Message, error) {
	if !h.live[channel] {
		return h.ChannelHistory.MessagesSince(channel, offset, limit)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []doc.Message
	if c := h.chans[channel]; c != nil {
		for _, m := range c.msgs {
			if m.Offset > offset && (limit <= 0 || len(out) < limit) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// Retract replaces a message of a live channel with a tombstone.
func (h *liveHistory) Retract(ctx context.Context, channel string, offset uint64, by string) error {
	if !h.live[channel] {
		return h.ChannelHistory.Retract(ctx, channel, offset, by)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.chans[channel]; c != nil {
		for i := range c.msgs {
			if m := &c.msgs[i]; m.Offset == offset {
				if !m.Retracted {
					m.Retracted, m.RetractedBy, m.Data = true, by, nil
				}
				return nil
			}
		}
	}
	return fmt.Errorf("retract message %d of %q: %w", offset, channel, storage.ErrNotFound)
}

var _ session.SharedChannelLog = (*liveHistory)(nil)

// Shared reports whether channel is shared with other nodes: never a live
// channel (each node keeps its own), and every other channel when the
// history behind is shared (cluster mode).
func (h *liveHistory) Shared(channel string) bool {
	sl, ok := h.ChannelHistory.(session.SharedChannelLog)
	return ok && !h.live[channel] && sl.Shared(channel)
}

// PublishMessage passes to the shared history (see Shared).
func (h *liveHistory) PublishMessage(ctx context.Context, msg doc.Message) (doc.Message, string, error) {
	sl, ok := h.ChannelHistory.(session.SharedChannelLog)
	if !ok {
		return doc.Message{}, "", fmt.Errorf("publish to %q: not a shared channel: %w", msg.Channel, doc.ErrInvalid)
	}
	return sl.PublishMessage(ctx, msg)
}

// FollowChannel passes to the shared history (see Shared).
func (h *liveHistory) FollowChannel(ctx context.Context, channel string, after uint64, deliver func(doc.Message, string), onErr func(error)) (func(), error) {
	sl, ok := h.ChannelHistory.(session.SharedChannelLog)
	if !ok {
		return nil, fmt.Errorf("follow %q: not a shared channel: %w", channel, doc.ErrInvalid)
	}
	return sl.FollowChannel(ctx, channel, after, deliver, onErr)
}
