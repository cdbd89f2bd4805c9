package session_test

// The harness of the tests that drive live documents directly, without a
// server: storage.DB over a real bbolt file in a temp dir behind the
// session's storage interfaces (faultyStore, which can inject failures at
// that boundary), and clients that record every frame the session sends
// them (recorder).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/storage"
)

// errInjected is the failure faultyStore injects.
var errInjected = errors.New("injected storage failure")

// faultyStore is storage.DB with failures injected at the session's
// storage interfaces.
type faultyStore struct {
	*storage.DB

	mu         sync.Mutex // guards the fields below
	forgetUIDs bool       // the next OpByUIDBefore finds nothing (a transient fault)
	failWrites bool       // PutComment and DeleteComment fail
	holdPuts   chan struct{}
	heldPut    chan struct{} // closed when PutComments waits on holdPuts
	appends    map[string]int
	// holdDone, while set, holds back the reports of appends (durable
	// already) until it is closed: the session hears of them late.
	holdDone chan struct{}
	reported int // the reports holdDone held, made since
}

func (f *faultyStore) set(fn func(f *faultyStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultyStore) AppendOpAsync(docID string, rec doc.OpRecord, done func(error)) {
	f.mu.Lock()
	f.appends[rec.UID]++
	hold := f.holdDone
	f.mu.Unlock()
	if hold != nil {
		report := done
		done = func(err error) {
			go func() {
				<-hold
				report(err)
				f.mu.Lock()
				f.reported++
				f.mu.Unlock()
			}()
		}
	}
	f.DB.AppendOpAsync(docID, rec, done)
}

func (f *faultyStore) appendsOf(uid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appends[uid]
}

func (f *faultyStore) OpByUIDBefore(docID, uid string, before int) (doc.OpRecord, bool, error) {
	f.mu.Lock()
	forget := f.forgetUIDs
	f.forgetUIDs = false
	f.mu.Unlock()
	if forget {
		return doc.OpRecord{}, false, nil
	}
	return f.DB.OpByUIDBefore(docID, uid, before)
}

func (f *faultyStore) PutComment(ctx context.Context, docID string, c doc.Comment) error {
	f.mu.Lock()
	fail := f.failWrites
	f.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.DB.PutComment(ctx, docID, c)
}

func (f *faultyStore) DeleteComment(ctx context.Context, docID, id string) error {
	f.mu.Lock()
	fail := f.failWrites
	f.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.DB.DeleteComment(ctx, docID, id)
}

func (f *faultyStore) PutComments(ctx context.Context, docID string, cs []doc.Comment) error {
	f.mu.Lock()
	hold, held := f.holdPuts, f.heldPut
	f.holdPuts = nil
	f.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
	return f.DB.PutComments(ctx, docID, cs)
}

// newFaultyDocs runs live documents on a faultyStore over a real bbolt
// file; the test's cleanup closes both.
func newFaultyDocs(t *testing.T, idle time.Duration) (*session.Docs, *faultyStore) {
	t.Helper()
	return newFaultyDocsWith(t, func(c *session.DocsConfig) { c.IdleTimeout = idle })
}

// newFaultyDocsWith is newFaultyDocs with the config edited by edit.
func newFaultyDocsWith(t *testing.T, edit func(*session.DocsConfig)) (*session.Docs, *faultyStore) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	db, err := storage.Open(filepath.Join(t.TempDir(), "tandem.db"), storage.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	st := &faultyStore{DB: db, appends: map[string]int{}}
	cfg := session.DocsConfig{Documents: st, OpLog: st, Snapshots: st, Comments: st, Logger: log}
	edit(&cfg)
	docs := session.NewDocs(cfg)
	t.Cleanup(func() {
		docs.Close()
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return docs, st
}

// recorder is a client of live documents that keeps what it is sent.
type recorder struct {
	t    *testing.T
	id   string
	user proto.User

	mu      sync.Mutex // guards frames, batches and gate
	frames  []map[string]json.RawMessage
	batches []int         // the sizes of the SendBatch calls, in order
	gate    func()        // when set, every Send and SendBatch calls it first
	more    chan struct{} // cap 1: a frame arrived
	nextID  int64
}

func newRecorder(t *testing.T, user string) *recorder {
	return &recorder{t: t, id: "c_" + user, user: proto.User{ID: user, Name: user}, more: make(chan struct{}, 1)}
}

func (r *recorder) ClientID() string { return r.id }

func (r *recorder) Send(frame []byte) bool {
	r.pass()
	return r.record(frame)
}

// SendBatch is Send for each frame, and notes the batch's size
// (session.BatchSender).
func (r *recorder) SendBatch(frames [][]byte) bool {
	r.pass()
	r.mu.Lock()
	r.batches = append(r.batches, len(frames))
	r.mu.Unlock()
	for _, f := range frames {
		r.record(f)
	}
	return true
}

// pass calls the gate, if there is one.
func (r *recorder) pass() {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		gate()
	}
}

func (r *recorder) record(frame []byte) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(frame, &m); err != nil {
		r.t.Errorf("%s got a frame that is not JSON: %q", r.id, frame)
		return true
	}
	r.mu.Lock()
	r.frames = append(r.frames, m)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
	return true
}

// client returns r as live documents see it; errors arrive as frames of
// type "error" carrying the error's text, and "try_again" true when it is
// session.ErrTryAgain.
func (r *recorder) client() session.DocClient {
	return session.DocClient{Sub: r, User: r.user, Fail: func(id *int64, err error) {
		r.Send(proto.Encode(map[string]any{"id": id, "type": "error", "message": err.Error(),
			"try_again": errors.Is(err, session.ErrTryAgain)}))
	}}
}

func (r *recorder) newID() *int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	id := r.nextID
	return &id
}

// wait returns the first frame (from the start) that match accepts,
// waiting for it.
func (r *recorder) wait(what string, match func(map[string]json.RawMessage) bool) map[string]json.RawMessage {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		i := slices.IndexFunc(r.frames, match)
		var m map[string]json.RawMessage
		if i >= 0 {
			m = r.frames[i]
		}
		r.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-r.more:
		case <-deadline:
			r.t.Fatalf("%s: timed out waiting for %s", r.id, what)
		}
	}
}

// answer waits for the frame answering request id.
func (r *recorder) answer(id *int64) map[string]json.RawMessage {
	r.t.Helper()
	return r.wait(fmt.Sprintf("the answer to request %d", *id), func(m map[string]json.RawMessage) bool {
		return m["id"] != nil && num(m["id"]) == int(*id)
	})
}

// saw reports whether a frame match accepts has arrived.
func (r *recorder) saw(match func(map[string]json.RawMessage) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.frames, match)
}

func ofType(typ string) func(map[string]json.RawMessage) bool {
	return func(m map[string]json.RawMessage) bool { return str(m["type"]) == typ }
}

func (r *recorder) open(docs *session.Docs, docID string) map[string]json.RawMessage {
	r.t.Helper()
	id := r.newID()
	docs.Open(r.client(), id, docID, nil, "", true)
	return r.answer(id)
}

func (r *recorder) op(docs *session.Docs, docID string, version int, op ot.Op, uid string) *int64 {
	id := r.newID()
	docs.Submit(r.client(), id, docID, version, op, uid)
	return id
}

func (r *recorder) comment(docs *session.Docs, docID string, cr session.CommentRequest) map[string]json.RawMessage {
	r.t.Helper()
	id := r.newID()
	docs.Comment(r.client(), id, docID, cr, true) // as an admin: any comment
	return r.answer(id)
}

// close closes docID for r and waits for the answer.
func (r *recorder) close(docs *session.Docs, docID string) {
	r.t.Helper()
	id := r.newID()
	docs.CloseDoc(r.client(), id, docID)
	r.answer(id)
}
