package hooks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/webhook"
)

// stored is one doc_store request a backend received, in arrival order.
type stored struct {
	DocSnapshot
	delivery string
	attempt  int
	status   int // what the backend answered
}

// storeBackend is a backend for doc_store that answers with status(n, s)
// (nil: 200), n counting its requests from 1. With jitter set, each
// request first waits a random 0-5 ms, as a backend's processing would,
// so that the order it records (its commit order) would show two
// requests for one document in flight at once.
type storeBackend struct {
	*backend
	jitter atomic.Bool
	mu     sync.Mutex // guards got, busy and overlaps
	got    []stored
	// busy counts each document's requests in the handler now; overlaps
	// counts the requests that found another of their document there.
	busy     map[string]int
	overlaps int
}

func newStoreBackend(t *testing.T, status func(n int, s DocSnapshot) int) *storeBackend {
	sb := &storeBackend{busy: make(map[string]int)}
	sb.backend = newBackend(t, func(g got, r *http.Request) (int, string) {
		s := parse[DocSnapshot](g.body)
		attempt, _ := strconv.Atoi(g.header.Get(webhook.HeaderAttempt))
		sb.mu.Lock()
		if sb.busy[s.Doc]++; sb.busy[s.Doc] > 1 {
			sb.overlaps++
		}
		sb.mu.Unlock()
		defer func() {
			sb.mu.Lock()
			sb.busy[s.Doc]--
			sb.mu.Unlock()
		}()
		if sb.jitter.Load() {
			time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
		}
		sb.mu.Lock() // the recorded order is the order of this lock
		n := len(sb.got) + 1
		sb.got = append(sb.got, stored{DocSnapshot: s, delivery: g.header.Get(webhook.HeaderDelivery), attempt: attempt})
		sb.mu.Unlock()
		code := 200
		if status != nil {
			code = status(n, s)
		}
		sb.mu.Lock()
		sb.got[n-1].status = code
		sb.mu.Unlock()
		return code, ``
	})
	return sb
}

func (sb *storeBackend) stores() []stored {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return append([]stored(nil), sb.got...)
}

// lastOK returns the last version of doc the backend accepted (-1: none).
func (sb *storeBackend) lastOK(doc string) int {
	v := -1
	for _, s := range sb.stores() {
		if s.Doc == doc && s.status == 200 {
			v = s.Version
		}
	}
	return v
}

func storeConfig(url string, ds DocStoreConfig) Config {
	return Config{URL: url, Secret: testSecret, DocStore: &ds}
}

// closeCaller closes c within a generous bound and returns its error.
func closeCaller(c *Caller) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Close(ctx)
}

// TestDocStoreDebounce: a hundred versions within one window are one
// request with the latest, sent at the latest by the shutdown drain.
func TestDocStoreDebounce(t *testing.T) {
	sb := newStoreBackend(t, nil)
	c, reg := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Hour), MaxWait: Duration(time.Hour)}))
	for v := 1; v <= 100; v++ {
		c.StoreDoc(DocSnapshot{Doc: "notes", Version: v, Epoch: "e1", Content: fmt.Sprintf("text %d", v)})
		c.StoreDoc(DocSnapshot{Doc: "other", Version: v, Epoch: "e1", Content: fmt.Sprintf("other %d", v)})
	}
	if n := counter(t, reg, "tandem_hook_doc_store_pending"); n != 2 {
		t.Fatalf("pending %v, want 2", n)
	}
	if n := len(sb.stores()); n != 0 {
		t.Fatalf("%d stores before the window ended (1h)", n)
	}
	if err := closeCaller(c); err != nil {
		t.Fatal(err)
	}
	got := sb.stores()
	if len(got) != 2 {
		t.Fatalf("got %d stores, want 2: %+v", len(got), got)
	}
	for _, s := range got {
		want := map[string]string{"notes": "text 100", "other": "other 100"}[s.Doc]
		if s.Version != 100 || s.Epoch != "e1" || s.Content != want || s.attempt != 1 {
			t.Fatalf("stored %+v, want version 100 with %q", s, want)
		}
	}
	if n := counter(t, reg, "tandem_hook_doc_store_pending"); n != 0 {
		t.Fatalf("pending after the drain %v", n)
	}
	// After Close, changes are dropped and counted.
	c.StoreDoc(DocSnapshot{Doc: "late", Version: 1, Epoch: "e1"})
	if n := counter(t, reg, "tandem_hook_doc_store_dropped_total"); n != 1 {
		t.Fatalf("dropped %v, want 1", n)
	}
}

// TestDocStoreWindows: a window ends after Debounce without a change, and
// a document changed without pause is still sent after MaxWait; content
// named by DocChanged is read from the DocSource.
func TestDocStoreWindows(t *testing.T) {
	sb := newStoreBackend(t, nil)
	t.Run("debounce", func(t *testing.T) {
		c, _ := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(50 * time.Millisecond), MaxWait: Duration(time.Hour)}))
		var head atomic.Int64
		c.SetDocSource(func(ctx context.Context, doc string) (DocSnapshot, error) {
			v := int(head.Load())
			return DocSnapshot{Version: v, Epoch: "e1", Content: "v" + strconv.Itoa(v)}, nil
		})
		for v := 1; v <= 5; v++ {
			head.Store(int64(v))
			c.DocChanged("settles", v, "e1")
		}
		testwait.For(t, 10*time.Second, "the settled document to be stored", func() bool { return sb.lastOK("settles") == 5 })
		for _, s := range sb.stores() {
			if s.Doc == "settles" && s.Content != "v"+strconv.Itoa(s.Version) {
				t.Fatalf("stored %+v: content not the source's", s)
			}
		}
	})
	t.Run("max_wait", func(t *testing.T) {
		c, _ := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Hour), MaxWait: Duration(100 * time.Millisecond)}))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // typing without pause, for at most 20 s
			for v := 1; v < 20000; v++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				c.StoreDoc(DocSnapshot{Doc: "busy", Version: v, Epoch: "e1", Content: "x"})
			}
		})
		testwait.For(t, 10*time.Second, "a store of the document edited without pause", func() bool { return sb.lastOK("busy") > 0 })
		close(stop)
		wg.Wait()
	})
}

// TestDocStoreRetry: a failed store is retried with backoff, under the
// same delivery id while the version is the same, until the backend
// takes it; a 4xx is not retried, and a later version still goes out.
func TestDocStoreRetry(t *testing.T) {
	sb := newStoreBackend(t, func(n int, s DocSnapshot) int {
		switch {
		case s.Doc == "flaky" && n <= 3:
			return []int{503, 429, 500}[n-1]
		case s.Doc == "refused" && s.Version == 1:
			return 400
		}
		return 200
	})
	c, reg := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Millisecond), RetryMin: Duration(10 * time.Millisecond), RetryMax: Duration(40 * time.Millisecond)}))
	c.StoreDoc(DocSnapshot{Doc: "flaky", Version: 7, Epoch: "e1", Content: "seven"})
	testwait.For(t, 10*time.Second, "the flaky store to succeed", func() bool { return sb.lastOK("flaky") == 7 })
	got := sb.stores()
	if len(got) != 4 {
		t.Fatalf("got %d attempts, want 4: %+v", len(got), got)
	}
	for i, s := range got {
		if s.attempt != i+1 || s.delivery != got[0].delivery || s.Version != 7 {
			t.Fatalf("attempt %d: %+v, want attempt %d of version 7 under delivery %s", i, s, i+1, got[0].delivery)
		}
	}
	if n := counter(t, reg, "tandem_hook_failures_total", "hook", "doc_store"); n != 3 {
		t.Fatalf("doc_store failures %v, want 3", n)
	}

	c.StoreDoc(DocSnapshot{Doc: "refused", Version: 1, Epoch: "e1", Content: "one"})
	testwait.For(t, 10*time.Second, "the refusal to be given up on", func() bool {
		return counter(t, reg, "tandem_hook_doc_store_abandoned_total") == 1
	})
	c.StoreDoc(DocSnapshot{Doc: "refused", Version: 2, Epoch: "e1", Content: "two"})
	testwait.For(t, 10*time.Second, "the next version to be stored", func() bool { return sb.lastOK("refused") == 2 })
	n := 0
	for _, s := range sb.stores() {
		if s.Doc == "refused" && s.Version == 1 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("version 1 was sent %d times: a 400 must not be retried", n)
	}
}

// TestDocStoreOrdering: many documents, each fed its versions in order
// while the backend fails a third of the requests at random: per
// document the backend never receives an older version after a newer
// one (within an epoch), and ends with the latest of each.
func TestDocStoreOrdering(t *testing.T) {
	const docs, versions = 8, 400
	var rmu sync.Mutex // guards r
	r := rand.New(rand.NewPCG(1, 2))
	sb := newStoreBackend(t, func(n int, s DocSnapshot) int {
		rmu.Lock()
		defer rmu.Unlock()
		if r.IntN(3) == 0 {
			return 500
		}
		return 200
	})
	sb.jitter.Store(true)
	c, reg := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Millisecond), MaxWait: Duration(5 * time.Millisecond),
		RetryMin: Duration(time.Millisecond), RetryMax: Duration(5 * time.Millisecond), Workers: 8}))
	var wg sync.WaitGroup
	for d := range docs {
		wg.Go(func() {
			doc := fmt.Sprintf("doc-%d", d)
			for v := 1; v <= versions; v++ {
				c.StoreDoc(DocSnapshot{Doc: doc, Version: v, Epoch: "e1", Content: doc + "@" + strconv.Itoa(v)})
				if v%5 == 0 {
					time.Sleep(2 * time.Millisecond) // let windows end, so that stores and changes overlap
				}
			}
		})
	}
	wg.Wait()
	if err := closeCaller(c); err != nil {
		t.Fatalf("drain: %v", err)
	}
	sb.mu.Lock()
	overlaps := sb.overlaps
	sb.mu.Unlock()
	if overlaps > 0 {
		t.Fatalf("%d times a document had two requests in flight at once", overlaps)
	}
	last := map[string]int{}
	for _, s := range sb.stores() {
		if s.Version < last[s.Doc] {
			t.Fatalf("%s: version %d arrived after %d", s.Doc, s.Version, last[s.Doc])
		}
		if s.Content != s.Doc+"@"+strconv.Itoa(s.Version) {
			t.Fatalf("%+v: content of another version", s)
		}
		last[s.Doc] = s.Version
	}
	for d := range docs {
		doc := fmt.Sprintf("doc-%d", d)
		if v := sb.lastOK(doc); v != versions {
			t.Fatalf("%s: the backend ends with version %d, want %d", doc, v, versions)
		}
	}
	t.Logf("%d requests for %d documents × %d versions", len(sb.stores()), docs, versions)
	if n := counter(t, reg, "tandem_hook_doc_store_abandoned_total") + counter(t, reg, "tandem_hook_doc_store_dropped_total"); n != 0 {
		t.Fatalf("abandoned or dropped: %v", n)
	}
}

// TestDocStoreEpoch: a new incarnation's versions go out even though they
// are lower than the old one's; an old version after a newer is ignored.
func TestDocStoreEpoch(t *testing.T) {
	sb := newStoreBackend(t, nil)
	c, _ := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Hour), MaxWait: Duration(time.Hour)}))
	c.StoreDoc(DocSnapshot{Doc: "d", Version: 9, Epoch: "old", Content: "nine"})
	c.StoreDoc(DocSnapshot{Doc: "d", Version: 8, Epoch: "old", Content: "eight"}) // out of order: ignored
	if err := closeCaller(c); err != nil {
		t.Fatal(err)
	}
	c2, _ := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Hour), MaxWait: Duration(time.Hour)}))
	c2.StoreDoc(DocSnapshot{Doc: "d", Version: 12, Epoch: "old", Content: "twelve"})
	c2.StoreDoc(DocSnapshot{Doc: "d", Version: 2, Epoch: "new", Content: "reborn"})
	if err := closeCaller(c2); err != nil {
		t.Fatal(err)
	}
	got := sb.stores()
	if len(got) != 2 || got[0].Version != 9 || got[1].Version != 2 || got[1].Epoch != "new" || got[1].Content != "reborn" {
		t.Fatalf("got %+v, want version 9 of old, then 2 of new", got)
	}
}

// TestDocStoreSource: the source may be ahead of the notifications (the
// version it returns goes out); without a source, or with a source that
// fails, the version is given up on and counted.
func TestDocStoreSource(t *testing.T) {
	sb := newStoreBackend(t, nil)
	bare, bareReg := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Hour), MaxWait: Duration(time.Hour)}))
	bare.DocChanged("nosource", 1, "e1")
	if err := closeCaller(bare); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, bareReg, "tandem_hook_doc_store_abandoned_total"); n != 1 || len(sb.stores()) != 0 {
		t.Fatalf("no source: abandoned %v, stores %+v; want 1 and none", n, sb.stores())
	}

	c, reg := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Hour), MaxWait: Duration(time.Hour)}))
	c.DocChanged("ahead", 5, "e1")
	c.SetDocSource(func(ctx context.Context, doc string) (DocSnapshot, error) {
		if doc == "gone" {
			return DocSnapshot{}, errors.New("no such document")
		}
		return DocSnapshot{Version: 7, Epoch: "e1", Content: "seven"}, nil
	})
	c.DocChanged("gone", 3, "e1")
	if err := closeCaller(c); err != nil {
		t.Fatal(err)
	}
	got := sb.stores()
	if len(got) != 1 || got[0].Doc != "ahead" {
		t.Fatalf("got %+v, want one store of version 7 of ahead", got)
	}
	for _, s := range got {
		if s.Version != 7 || s.Content != "seven" || s.Doc == "gone" {
			t.Fatalf("got %+v", s)
		}
	}
	if n := counter(t, reg, "tandem_hook_doc_store_abandoned_total"); n != 1 {
		t.Fatalf("abandoned %v, want 1 (gone)", n)
	}
}

// TestDocStoreDrainBound: with the backend down, Close gives up after the
// drain timeout (here 300 ms; the bound checked is 10 s), counts what it
// abandoned, and leaves no goroutine behind (goleak in TestMain).
func TestDocStoreDrainBound(t *testing.T) {
	c, reg := newCaller(t, storeConfig(deadURL(t), DocStoreConfig{Debounce: Duration(time.Hour), RetryMin: Duration(10 * time.Millisecond),
		RetryMax: Duration(20 * time.Millisecond), DrainTimeout: Duration(300 * time.Millisecond)}))
	for d := range 5 {
		c.StoreDoc(DocSnapshot{Doc: fmt.Sprintf("d%d", d), Version: 1, Epoch: "e1", Content: "x"})
	}
	start := time.Now()
	err := closeCaller(c)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the drain's deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if n := counter(t, reg, "tandem_hook_doc_store_abandoned_total"); n != 5 {
		t.Fatalf("abandoned %v, want 5", n)
	}
	if n := counter(t, reg, "tandem_hook_failures_total", "hook", "doc_store", "kind", "down"); n < 5 {
		t.Fatalf("down failures %v, want at least one per document", n)
	}
}

// TestDocStoreQueueBound: past queue_len documents, a change of a new
// document is dropped and counted; the others are still sent.
func TestDocStoreQueueBound(t *testing.T) {
	sb := newStoreBackend(t, nil)
	c, reg := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Hour), QueueLen: 2}))
	for _, doc := range []string{"a", "b", "c", "a"} {
		c.StoreDoc(DocSnapshot{Doc: doc, Version: 1, Epoch: "e1"})
	}
	c.StoreDoc(DocSnapshot{Doc: "a", Version: 2, Epoch: "e1"}) // already waiting: kept
	if n := counter(t, reg, "tandem_hook_doc_store_dropped_total"); n != 1 {
		t.Fatalf("dropped %v, want 1", n)
	}
	if err := closeCaller(c); err != nil {
		t.Fatal(err)
	}
	if sb.lastOK("a") != 2 || sb.lastOK("b") != 1 || sb.lastOK("c") != -1 {
		t.Fatalf("stores %+v", sb.stores())
	}
}

// TestDocStoreNewEpochDuringSend: a new incarnation named while a store
// of the old one is in flight is still sent after it (the old snapshot
// must not be taken for the newer state).
func TestDocStoreNewEpochDuringSend(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	sb := newStoreBackend(t, func(n int, s DocSnapshot) int {
		if first.CompareAndSwap(false, true) {
			close(arrived)
			<-release
		}
		return 200
	})
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free)
	c, _ := newCaller(t, storeConfig(sb.URL, DocStoreConfig{Debounce: Duration(time.Millisecond), MaxWait: Duration(time.Millisecond)}))
	var mu sync.Mutex // guards head
	head := DocSnapshot{Version: 5, Epoch: "A", Content: "old"}
	c.SetDocSource(func(ctx context.Context, doc string) (DocSnapshot, error) {
		mu.Lock()
		defer mu.Unlock()
		return head, nil
	})
	c.DocChanged("d", 5, "A")
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no store of version 5 within 10s")
	}
	// The document is deleted and made anew while A@5 is in flight.
	mu.Lock()
	head = DocSnapshot{Version: 1, Epoch: "B", Content: "new"}
	mu.Unlock()
	c.DocChanged("d", 1, "B")
	free()
	if err := closeCaller(c); err != nil {
		t.Fatal(err)
	}
	got := sb.stores()
	if len(got) != 2 || got[1].Epoch != "B" || got[1].Content != "new" {
		t.Fatalf("stores %+v: want A@5, then B@1", got)
	}
}
