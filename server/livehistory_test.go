package server

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/storage"
)

// TestLiveHistory: the live channel's history is kept in memory, trimmed
// to its limits, retractable, with an epoch of its own and consecutive
// offsets enforced; every other channel goes to storage.
func TestLiveHistory(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "tandem.db"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := newLiveHistory(db, "system:stats")
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	h.now = func() time.Time { return now }
	appendMsg := func(ch string, off uint64, at time.Time, limits doc.HistoryLimit) error {
		errc := make(chan error, 1)
		h.AppendMessageAsync(doc.Message{Channel: ch, Offset: off, Data: []byte(`{}`), Time: at}, limits, func(err error) { errc <- err })
		return <-errc
	}
	offsets := func(ch string, since uint64, limit int) []uint64 {
		t.Helper()
		msgs, err := h.MessagesSince(ch, since, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, m := range msgs {
			out = append(out, m.Offset)
		}
		return out
	}

	if last, epoch, err := h.ChannelState("system:stats"); last != 0 || epoch != "" || err != nil {
		t.Fatalf("state before any message: %d, %q, %v", last, epoch, err)
	}
	limits := doc.HistoryLimit{MaxCount: 3, MaxAge: time.Hour}
	for off := uint64(1); off <= 5; off++ {
		at := now.Add(-2 * time.Hour) // too old for the first two
		if off > 2 {
			at = now
		}
		if err := appendMsg("system:stats", off, at, limits); err != nil {
			t.Fatal(err)
		}
	}
	if got := offsets("system:stats", 0, 0); len(got) != 3 || got[0] != 3 || got[2] != 5 {
		t.Errorf("kept %v, want [3 4 5]", got)
	}
	if got := offsets("system:stats", 3, 1); len(got) != 1 || got[0] != 4 {
		t.Errorf("MessagesSince(3, limit 1) = %v", got)
	}
	if err := appendMsg("system:stats", 9, now, limits); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("a gap in offsets: %v, want ErrConflict", err)
	}
	last, epoch, _ := h.ChannelState("system:stats")
	if last != 5 || epoch == "" {
		t.Errorf("state: %d, %q", last, epoch)
	}
	if err := h.Retract(context.Background(), "system:stats", 4, "admin"); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := h.MessagesSince("system:stats", 3, 1); !msgs[0].Retracted || msgs[0].Data != nil {
		t.Errorf("retracted message: %+v", msgs[0])
	}
	if err := h.Retract(context.Background(), "system:stats", 1, "admin"); !errors.Is(err, doc.ErrNotFound) {
		t.Errorf("retract a trimmed message: %v", err)
	}
	if other := newLiveHistory(db, "system:stats"); func() string { _, e, _ := other.ChannelState("system:stats"); return e }() != "" {
		t.Error("a new process's live channel has history")
	}

	// Another channel: stored.
	if err := appendMsg("chat:x", 1, now, doc.HistoryLimit{}); err != nil {
		t.Fatal(err)
	}
	if last, _, err := db.ChannelState("chat:x"); last != 1 || err != nil {
		t.Errorf("storage's state of chat:x: %d, %v", last, err)
	}
	if last, _, err := db.ChannelState("system:stats"); last != 0 || err != nil {
		t.Errorf("system:stats reached storage: %d, %v", last, err)
	}
}
