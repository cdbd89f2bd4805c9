package session_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/storage"
)

// Tests of @mentions (mentions.go): finding the names, and resolving them
// on the bounded workers.

// TestMentions: which @names a text mentions.
func TestMentions(t *testing.T) {
	many := ""
	for i := range session.MaxMentions + 5 {
		many += fmt.Sprintf("@u%d ", i)
	}
	var first []string
	for i := range session.MaxMentions {
		first = append(first, fmt.Sprintf("u%d", i))
	}
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"hi @bob", []string{"bob"}},
		{"@ann and @bob.", []string{"ann", "bob"}},              // a full stop ends the name
		{"@ann-marie, @j.doe-", []string{"ann-marie", "j.doe"}}, // dashes and dots inside stay
		{"mail me at ann@example.com", nil},                     // not after a name character
		{"@@bob (@carol) @", []string{"bob", "carol"}},          // an @ is no name character; a lone @ names nobody
		{"@Zoë @李 @bob @bob", []string{"Zoë", "李", "bob"}},      // letters of any script; once each
		{"no mentions here", nil},
		{many, first}, // only the first MaxMentions
	} {
		if got := session.Mentions(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("Mentions(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	if n := len(session.Mentions(strings.Repeat("@x ", 10000))); n != 1 {
		t.Errorf("a repeated name counted %d times", n)
	}
}

// slowUsers is the users store with a lookup that waits until release is
// closed: a storage read stuck behind a slow disk.
type slowUsers struct {
	session.Users
	release chan struct{}
	calls   atomic.Int64
}

func (u *slowUsers) GetUser(id string) (doc.User, bool, error) {
	u.calls.Add(1)
	<-u.release
	return u.Users.GetUser(id)
}

// TestNotifyMentionsNeverBlocks: while the users store hangs, NotifyMentions
// (which a document calls from its own goroutine for a comment's
// @mentions) returns at once every time; what the bounded queue cannot
// hold is dropped and counted, and the workers resolve the rest once the
// store answers.
func TestNotifyMentionsNeverBlocks(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	db, err := storage.Open(filepath.Join(t.TempDir(), "tandem.db"), storage.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	users := &slowUsers{Users: db, release: make(chan struct{})}
	const workers, queue, calls = 2, 8, 200
	hub := session.NewHub(session.HubConfig{
		History: db, Receipts: db, Users: users, Logger: log, MentionWorkers: workers, MentionQueue: queue,
	})
	defer hub.Close()
	released := false
	defer func() {
		if !released {
			close(users.release)
		}
	}()

	returned := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for i := range calls {
			hub.NotifyMentions([]string{"bob", "carol"}, "doc:d", uint64(i), "ann", "Ann", "hi @bob @carol")
		}
		returned <- time.Since(start)
	}()
	// Generous: the calls only queue; with the lookups inline the first call
	// would hang until release.
	select {
	case d := <-returned:
		t.Logf("%d calls returned in %v with the users store hanging", calls, d)
	case <-time.After(5 * time.Second):
		t.Fatal("NotifyMentions blocked on a hanging user lookup")
	}
	deadline := time.Now().Add(10 * time.Second)
	for users.calls.Load() < workers {
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups started, want %d (one per worker)", users.calls.Load(), workers)
		}
		time.Sleep(time.Millisecond)
	}
	resolved, dropped := hub.MentionStats()
	if resolved != 0 || dropped < calls-queue-workers {
		t.Fatalf("resolved %d, dropped %d while the store hangs; want 0 resolved and at least %d dropped", resolved, dropped, calls-queue-workers)
	}
	close(users.release)
	released = true
	for {
		resolved, dropped = hub.MentionStats()
		if resolved+dropped == calls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolved %d + dropped %d of %d after the store answered", resolved, dropped, calls)
		}
		time.Sleep(time.Millisecond)
	}
}
