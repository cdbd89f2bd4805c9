package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

func TestComments(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	h := newHistory("d", 21)
	h.appendN(t, db, 10)
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	c1 := doc.Comment{ID: "c1", Range: ot.Range{From: 0, To: 2}, Version: 4, User: "u1", UserName: "Ann", Text: "hm", CreatedAt: t0.Add(time.Minute)}
	c2 := doc.Comment{ID: "c2", Range: ot.Range{From: 1, To: 1}, Version: 10, User: "u2", Text: "reply", Parent: "c1", CreatedAt: t0}
	for _, c := range []doc.Comment{c1, c2} {
		if err := db.PutComment(ctx(t), "d", c); err != nil {
			t.Fatal(err)
		}
	}
	c1.Resolved, c1.UpdatedAt = true, t0.Add(time.Hour)
	if err := db.PutComment(ctx(t), "d", c1); err != nil { // replace
		t.Fatal(err)
	}
	cs, err := db.Comments("d")
	if err != nil || len(cs) != 2 {
		t.Fatalf("Comments = %v, %v", cs, err)
	}
	if cs[0].ID != "c2" || cs[1].ID != "c1" || !cs[1].Resolved || !cs[1].UpdatedAt.Equal(c1.UpdatedAt) || cs[1].UserName != "Ann" {
		t.Fatalf("Comments = %+v; want c2 then the updated c1", cs)
	}

	for _, tc := range []struct {
		name string
		doc  string
		c    doc.Comment
		want error
	}{
		{"empty id", "d", doc.Comment{Version: 1}, ErrInvalid},
		{"version past head", "d", doc.Comment{ID: "x", Version: 11}, ErrInvalid},
		{"negative version", "d", doc.Comment{ID: "x", Version: -1}, ErrInvalid},
		{"inverted range", "d", doc.Comment{ID: "x", Range: ot.Range{From: 3, To: 1}}, ErrInvalid},
		{"negative range", "d", doc.Comment{ID: "x", Range: ot.Range{From: -1, To: 1}}, ErrInvalid},
		{"missing doc", "nope", doc.Comment{ID: "x"}, ErrNotFound},
	} {
		if err := db.PutComment(ctx(t), tc.doc, tc.c); !errors.Is(err, tc.want) {
			t.Errorf("PutComment %s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := db.DeleteComment(ctx(t), "d", "c2"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c2", "", "zz"} {
		if err := db.DeleteComment(ctx(t), "d", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteComment(%q): got %v, want ErrNotFound", id, err)
		}
	}
	if err := db.DeleteComment(ctx(t), "nope", "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteComment on a missing doc: got %v", err)
	}
	if cs, _ := db.Comments("d"); len(cs) != 1 || cs[0].ID != "c1" {
		t.Fatalf("after delete: %+v", cs)
	}
}

// msg makes message offset of channel ch.
func msg(ch string, offset uint64, at time.Time) doc.Message {
	return doc.Message{Channel: ch, Offset: offset, Event: "say", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, offset)), User: "u", Time: at}
}

func TestChannelHistory(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	setClock := func(t time.Time) { clockMu.Lock(); now = t; clockMu.Unlock() }
	db := openTestDB(t, Config{Now: clock})

	if last, epoch, err := db.ChannelState("chat:a"); last != 0 || epoch != "" || err != nil {
		t.Fatalf("ChannelState of a new channel = %d, %q, %v", last, epoch, err)
	}
	if ms, err := db.MessagesSince("chat:a", 0, 0); len(ms) != 0 || err != nil {
		t.Fatalf("MessagesSince of a new channel = %v, %v", ms, err)
	}
	noLimit := HistoryLimit{}
	for i := uint64(1); i <= 5; i++ {
		if err := db.AppendMessage(ctx(t), msg("chat:a", i, now.Add(time.Duration(i)*time.Second)), noLimit); err != nil {
			t.Fatal(err)
		}
	}
	last, epoch, err := db.ChannelState("chat:a")
	if last != 5 || len(epoch) != 16 || err != nil {
		t.Fatalf("ChannelState = %d, %q, %v", last, epoch, err)
	}

	for _, tc := range []struct {
		name string
		m    doc.Message
		want error
	}{
		{"gap", msg("chat:a", 7, now), ErrConflict},
		{"duplicate", msg("chat:a", 5, now), ErrConflict},
		{"new channel not at 1", msg("chat:b", 2, now), ErrConflict},
		{"offset 0", msg("chat:a", 0, now), ErrInvalid},
		{"empty channel", msg("", 6, now), ErrInvalid},
		{"bad JSON data", doc.Message{Channel: "chat:a", Offset: 6, Data: json.RawMessage(`{"x":`)}, ErrInvalid},
		{"already retracted", doc.Message{Channel: "chat:a", Offset: 6, Retracted: true}, ErrInvalid},
	} {
		if err := db.AppendMessage(ctx(t), tc.m, noLimit); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if last, _, _ := db.ChannelState("chat:a"); last != 5 {
		t.Fatalf("rejected appends moved the offset to %d", last)
	}
	if last, _, _ := db.ChannelState("chat:b"); last != 0 {
		t.Fatalf("a rejected first message created chat:b at %d", last)
	}

	ms, err := db.MessagesSince("chat:a", 2, 2)
	if err != nil || len(ms) != 2 || ms[0].Offset != 3 || ms[1].Offset != 4 || string(ms[0].Data) != `{"n":3}` {
		t.Fatalf("MessagesSince(2, 2) = %+v, %v", ms, err)
	}
	if ms, _ := db.MessagesSince("chat:a", 0, 0); len(ms) != 5 {
		t.Fatalf("MessagesSince(0, all): %d messages", len(ms))
	}

	// Retract keeps a tombstone.
	if err := db.Retract(ctx(t), "chat:a", 3, "mod"); err != nil {
		t.Fatal(err)
	}
	if err := db.Retract(ctx(t), "chat:a", 3, "other"); err != nil {
		t.Fatalf("second Retract: %v", err)
	}
	for _, off := range []uint64{0, 9} {
		if err := db.Retract(ctx(t), "chat:a", off, "mod"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Retract(%d): got %v, want ErrNotFound", off, err)
		}
	}
	ms, _ = db.MessagesSince("chat:a", 2, 1)
	if m := ms[0]; !m.Retracted || m.RetractedBy != "mod" || m.Data != nil || m.Offset != 3 || m.Event != "say" {
		t.Fatalf("tombstone = %+v", m)
	}

	// Trimming by count, then by age, in the commit of an append.
	if err := db.AppendMessage(ctx(t), msg("chat:a", 6, now.Add(6*time.Second)), HistoryLimit{MaxCount: 3}); err != nil {
		t.Fatal(err)
	}
	if ms, _ := db.MessagesSince("chat:a", 0, 0); len(ms) != 3 || ms[0].Offset != 4 {
		t.Fatalf("after MaxCount 3: %d messages from %d", len(ms), ms[0].Offset)
	}
	later := now.Add(time.Hour)
	setClock(later)
	if err := db.AppendMessage(ctx(t), msg("chat:a", 7, time.Time{}), HistoryLimit{MaxAge: time.Minute}); err != nil {
		t.Fatal(err)
	}
	ms, _ = db.MessagesSince("chat:a", 0, 0)
	if len(ms) != 1 || ms[0].Offset != 7 || !ms[0].Time.Equal(later) {
		t.Fatalf("after MaxAge 1m an hour later: %+v", ms)
	}
	if err := db.Retract(ctx(t), "chat:a", 4, "mod"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Retract of a trimmed message: got %v, want ErrNotFound", err)
	}

	// The epoch survives trimming and reopening; offsets go on.
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Config{Now: clock})
	if last, e, _ := db.ChannelState("chat:a"); last != 7 || e != epoch {
		t.Fatalf("after reopen: ChannelState = %d, %q; want 7, %q", last, e, epoch)
	}
	if err := db.AppendMessage(ctx(t), msg("chat:a", 8, time.Time{}), noLimit); err != nil {
		t.Fatal(err)
	}
	// Another channel gets another epoch.
	if err := db.AppendMessage(ctx(t), msg("chat:b", 1, time.Time{}), noLimit); err != nil {
		t.Fatal(err)
	}
	if _, e, _ := db.ChannelState("chat:b"); e == epoch || e == "" {
		t.Fatalf("chat:b epoch %q (chat:a has %q)", e, epoch)
	}
}

// TestMessagesAndOpsShareCommits pipelines messages and ops together.
func TestMessagesAndOpsShareCommits(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "d")
	h := newHistory("d", 22)
	const n = 200
	errs := make(chan error, 2*n)
	for i := range n {
		rec := h.next()
		h.commit(t, rec)
		db.AppendOpAsync("d", rec, func(err error) { errs <- err })
		db.AppendMessageAsync(msg("doc:d", uint64(i+1), time.Time{}), HistoryLimit{MaxCount: 50}, func(err error) { errs <- err })
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if ms, _ := db.MessagesSince("doc:d", 0, 0); len(ms) != 50 || ms[0].Offset != n-49 {
		t.Fatalf("%d messages kept", len(ms))
	}
	if st := db.Stats(); st.MaxGroup < 2 {
		t.Errorf("max group %d for a pipeline of %d requests", st.MaxGroup, 2*n)
	}
}

func TestReceipts(t *testing.T) {
	db := openTestDB(t, Config{})
	for _, r := range []struct {
		user string
		off  uint64
	}{{"ann", 3}, {"bob", 7}, {"ann", 5}, {"ann", 4}, {"bob", 1}} {
		if err := db.SetReceipt(ctx(t), r.user, "chat:a", r.off); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Receipts("chat:a")
	if err != nil || len(got) != 2 || got["ann"] != 5 || got["bob"] != 7 {
		t.Fatalf("Receipts = %v, %v; want ann 5, bob 7", got, err)
	}
	// Channel and user names that run together stay apart.
	if err := db.SetReceipt(ctx(t), "c", "ab", 9); err != nil {
		t.Fatal(err)
	}
	if err := db.SetReceipt(ctx(t), "bc", "a", 4); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Receipts("a"); len(got) != 1 || got["bc"] != 4 {
		t.Fatalf("Receipts(a) = %v, want bc 4", got)
	}
	if got, _ := db.Receipts("ab"); len(got) != 1 || got["c"] != 9 {
		t.Fatalf("Receipts(ab) = %v, want c 9", got)
	}
	if got, err := db.Receipts("chat:none"); err != nil || len(got) != 0 {
		t.Fatalf("Receipts of an unknown channel = %v, %v", got, err)
	}
	for _, tc := range []struct{ user, ch string }{{"", "c"}, {"u", ""}, {strings.Repeat("u", maxIDLen+1), "c"}} {
		if err := db.SetReceipt(ctx(t), tc.user, tc.ch, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetReceipt(%q, %q): got %v, want ErrInvalid", tc.user, tc.ch, err)
		}
	}
}

func TestUsers(t *testing.T) {
	db := openTestDB(t, Config{})
	for _, u := range []doc.User{{ID: "u1", Name: "ann"}, {ID: "u2", Name: "bob"}, {ID: "u1", Name: "anne"}} {
		if err := db.PutUser(ctx(t), u); err != nil {
			t.Fatal(err)
		}
	}
	if u, ok, err := db.GetUser("u1"); !ok || err != nil || u.Name != "anne" {
		t.Fatalf("GetUser(u1) = %+v, %t, %v", u, ok, err)
	}
	if _, ok, err := db.GetUser("nope"); ok || err != nil {
		t.Fatalf("GetUser(nope): %t, %v", ok, err)
	}
	for name, want := range map[string]string{"anne": "u1", "bob": "u2", "ann": "", "": ""} {
		u, ok, err := db.UserByName(name)
		if err != nil || ok != (want != "") || u.ID != want {
			t.Errorf("UserByName(%q) = %+v, %t, %v; want %q", name, u, ok, err, want)
		}
	}
	// A second user taking a name moves the index to them.
	if err := db.PutUser(ctx(t), doc.User{ID: "u3", Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := db.UserByName("bob"); u.ID != "u3" {
		t.Fatalf("UserByName(bob) = %q, want u3", u.ID)
	}
	// Renaming u2 must not steal the name back from u3.
	if err := db.PutUser(ctx(t), doc.User{ID: "u2", Name: "robert"}); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := db.UserByName("bob"); u.ID != "u3" {
		t.Fatalf("UserByName(bob) after u2's rename = %q, want u3", u.ID)
	}
	for _, u := range []doc.User{{}, {ID: strings.Repeat("x", maxIDLen+1)}, {ID: "a", Name: strings.Repeat("n", maxIDLen+1)}} {
		if err := db.PutUser(ctx(t), u); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutUser(%.20q): got %v, want ErrInvalid", u.ID, err)
		}
	}
}

// ensureChannel calls EnsureChannelAsync and waits for it.
func ensureChannel(t *testing.T, db *DB, channel, epoch string) (string, error) {
	t.Helper()
	type res struct {
		epoch string
		err   error
	}
	ch := make(chan res, 1)
	db.EnsureChannelAsync(channel, epoch, func(stored string, err error) { ch <- res{stored, err} })
	select {
	case r := <-ch:
		return r.epoch, r.err
	case <-time.After(time.Minute):
		t.Fatal("EnsureChannelAsync never completed")
		return "", nil
	}
}

// TestEnsureChannel: a channel gets its epoch before its first message, the
// first message keeps it, it survives a reopen, a second ensure keeps the
// first epoch, and bad input writes nothing.
func TestEnsureChannel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tandem.db")
	db := openAt(t, path, Config{})
	if got, err := ensureChannel(t, db, "chat:e", "epoch-1"); got != "epoch-1" || err != nil {
		t.Fatalf("first ensure = %q, %v; want epoch-1", got, err)
	}
	if got, err := ensureChannel(t, db, "chat:e", "epoch-2"); got != "epoch-1" || err != nil {
		t.Fatalf("second ensure = %q, %v; want the first epoch kept", got, err)
	}
	if last, epoch, err := db.ChannelState("chat:e"); last != 0 || epoch != "epoch-1" || err != nil {
		t.Fatalf("ChannelState = %d, %q, %v; want 0, epoch-1", last, epoch, err)
	}
	if err := db.AppendMessage(ctx(t), msg("chat:e", 1, time.Now()), HistoryLimit{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, channel, epoch string
	}{
		{"empty channel", "", "x"},
		{"empty epoch", "chat:f", ""},
		{"long epoch", "chat:f", strings.Repeat("e", maxEpochLen+1)},
		{"bad UTF-8 epoch", "chat:f", "\xff"},
	} {
		if _, err := ensureChannel(t, db, tc.channel, tc.epoch); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, epoch, _ := db.ChannelState("chat:f"); epoch != "" {
		t.Fatalf("a refused ensure stored epoch %q", epoch)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Config{})
	if last, epoch, err := db.ChannelState("chat:e"); last != 1 || epoch != "epoch-1" || err != nil {
		t.Fatalf("after reopen ChannelState = %d, %q, %v; want 1, epoch-1", last, epoch, err)
	}
}

// TestEnsureChannelsGrouped: ensuring many channels at once costs far fewer
// commits than channels (they share the group commit).
func TestEnsureChannelsGrouped(t *testing.T) {
	db := openTestDB(t, Config{})
	const n = 500
	before := db.Stats().Commits
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		db.EnsureChannelAsync(fmt.Sprintf("chat:g%d", i), fmt.Sprintf("e%d", i), func(_ string, err error) {
			errs <- err
			wg.Done()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if commits := db.Stats().Commits - before; commits > n/10 {
		t.Fatalf("%d ensures took %d commits; want them grouped (at most %d)", n, commits, n/10)
	}
}
