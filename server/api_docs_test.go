package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/server"
)

// apiTypist is an editor speaking the wire protocol with the OT client
// algorithm: at most one op in flight, later local edits composed into a
// buffer, and every incoming op transformed over both with
// ot.Transform(incoming, pending), so the server's op wins ties.
type apiTypist struct {
	c       *apiConn
	doc     string
	name    string
	base    rune // typed runes are base, base+1, ...: unique across typists
	r       *rand.Rand
	text    string
	version int // the server version text reflects, apart from pending ops
	inflight,
	buffer ot.Op
	inflightUID string
	typed       []rune
	seq         int
	apiOps      []ot.Op // ops of the HTTP API (user api:...) received
}

// open opens the document and takes its snapshot.
func (ty *apiTypist) open() error {
	id := ty.c.send(map[string]any{"type": "open", "doc": ty.doc})
	for f := range ty.c.frames {
		if f.ID != nil && *f.ID == id {
			if f.Type != "snapshot" {
				return fmt.Errorf("%s: open: %s", ty.name, f.Raw)
			}
			ty.text, ty.version = f.Content, f.Version
			return nil
		}
	}
	return fmt.Errorf("%s: connection ended while opening", ty.name)
}

// edit types one unique rune at a random place.
func (ty *apiTypist) edit() error {
	n := utf8.RuneCountInString(ty.text)
	ch := ty.base + rune(len(ty.typed))
	op := ot.Splice(ty.r.IntN(n+1), 0, string(ch))
	text, err := ot.Apply(ty.text, op)
	if err != nil {
		return err
	}
	ty.text = text
	ty.typed = append(ty.typed, ch)
	if ty.inflight == nil {
		ty.sendOp(op)
		return nil
	}
	if ty.buffer == nil {
		ty.buffer = op
		return nil
	}
	ty.buffer, err = ot.Compose(ty.buffer, op)
	return err
}

func (ty *apiTypist) sendOp(op ot.Op) {
	ty.seq++
	ty.inflight, ty.inflightUID = op, fmt.Sprintf("%s-%d", ty.name, ty.seq)
	ty.c.send(map[string]any{"type": "op", "doc": ty.doc, "version": ty.version, "op": op, "uid": ty.inflightUID})
}

// handle takes one frame from the server.
func (ty *apiTypist) handle(f apiFrame) error {
	if f.Doc != ty.doc {
		return nil
	}
	switch f.Type {
	case "ack":
		if ty.inflight == nil || f.UID != ty.inflightUID || f.Version != ty.version {
			return fmt.Errorf("%s: unexpected ack %s (in flight %q at v%d)", ty.name, f.Raw, ty.inflightUID, ty.version)
		}
		ty.version++
		ty.inflight = nil
		if b := ty.buffer; b != nil {
			ty.buffer = nil
			ty.sendOp(b)
		}
	case "op":
		if f.Version != ty.version {
			return fmt.Errorf("%s: op at v%d while at v%d: %s", ty.name, f.Version, ty.version, f.Raw)
		}
		if strings.HasPrefix(f.userID(), "api:") {
			ty.apiOps = append(ty.apiOps, f.Op)
		}
		in := f.Op
		var err error
		if ty.inflight != nil {
			if in, ty.inflight, err = ot.Transform(in, ty.inflight); err != nil {
				return err
			}
		}
		if ty.buffer != nil {
			if in, ty.buffer, err = ot.Transform(in, ty.buffer); err != nil {
				return err
			}
		}
		if ty.text, err = ot.Apply(ty.text, in); err != nil {
			return fmt.Errorf("%s: apply %v: %w", ty.name, in, err)
		}
		ty.version++
	case "error":
		return fmt.Errorf("%s: %s", ty.name, f.Raw)
	}
	return nil
}

// run types n runes, one every tick, handling frames meanwhile, until every
// one is acknowledged; then it handles frames until it reaches version
// target (read from target once every typist is done).
func (ty *apiTypist) run(n int, typedCount *atomic.Int64, done *sync.WaitGroup, target func() int) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	finished := false
	for {
		if !finished && len(ty.typed) == n && ty.inflight == nil && ty.buffer == nil {
			finished = true
			done.Done()
		}
		if finished && ty.version == target() {
			return nil
		}
		select {
		case f, ok := <-ty.c.frames:
			if !ok {
				return fmt.Errorf("%s: connection ended: %v", ty.name, ty.c.err)
			}
			if err := ty.handle(f); err != nil {
				return err
			}
		case <-tick.C:
			if len(ty.typed) < n {
				if err := ty.edit(); err != nil {
					return err
				}
				typedCount.Add(1)
			}
		case <-timeout:
			return fmt.Errorf("%s: timed out at v%d (target %d), typed %d of %d", ty.name, ty.version, target(), len(ty.typed), n)
		}
	}
}

// apiStripTyped removes the typists' runes (U+4E00 and above) from s.
func apiStripTyped(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0x4E00 {
			return -1
		}
		return r
	}, s)
}

// TestAPIPutContentWhileTyping: a PUT /content lands while three editors
// keep typing; everyone converges on a text holding the PUT's change and
// every rune typed, and the editors saw the PUT as a small op.
func TestAPIPutContentWhileTyping(t *testing.T) {
	t.Parallel()
	a := apiStart(t, func(c *server.Config) { c.File.Limits.OpRate, c.File.Limits.OpBurst = 10000, 10000 })
	const seed = "The quick brown fox jumps over the lazy dog.\n"
	a.call("POST", "/api/docs", map[string]string{"id": "live", "content": seed}, 201, nil)

	const perTypist = 60
	typists := make([]*apiTypist, 3)
	for i := range typists {
		name := fmt.Sprintf("typist%d", i)
		typists[i] = &apiTypist{c: a.dial(name), doc: "live", name: name, base: 0x4E00 + rune(i)*0x1000, r: rand.New(rand.NewPCG(uint64(i), 7))}
		if err := typists[i].open(); err != nil {
			t.Fatal(err)
		}
	}
	var typed atomic.Int64
	var done sync.WaitGroup
	done.Add(len(typists))
	var head atomic.Int64
	head.Store(-1)
	errs := make(chan error, len(typists))
	for _, ty := range typists {
		go func() { errs <- ty.run(perTypist, &typed, &done, func() int { return int(head.Load()) }) }()
	}

	// Once each has typed about a quarter, replace "quick brown" with
	// "slow red" and append a line, based on the version read.
	apiWaitFor(t, 10*time.Second, "typing to start", func() bool { return typed.Load() >= 30 })
	before := a.getDoc("live", -1)
	from, to := strings.Index(seed, "quick brown"), strings.Index(seed, "quick brown")+len("quick brown")
	var b strings.Builder
	k := 0 // index into seed of the next seed rune
	for _, r := range before.Content {
		if r >= 0x4E00 { // a typist's rune: kept
			b.WriteRune(r)
			continue
		}
		if k == from {
			b.WriteString("slow red")
		}
		if k < from || k >= to {
			b.WriteRune(r)
		}
		k++
	}
	b.WriteString("-- edited over HTTP\n")
	var put struct {
		Version int   `json:"version"`
		Op      ot.Op `json:"op"`
	}
	a.call("PUT", "/api/docs/live/content", map[string]any{"content": b.String(), "version": before.Version}, 200, &put)

	done.Wait() // every typist's ops are acknowledged
	final := a.getDoc("live", -1)
	head.Store(int64(final.Head))
	for range typists {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := seed[:from] + "slow red" + seed[to:] + "-- edited over HTTP\n"
	if got := apiStripTyped(final.Content); got != want {
		t.Fatalf("without the typed runes the text is %q, want %q", got, want)
	}
	if final.Head <= put.Version {
		t.Fatalf("head %d, PUT applied at v%d: nobody typed after the PUT", final.Head, put.Version)
	}
	t.Logf("PUT based on v%d applied as v%d of %d", before.Version, put.Version-1, final.Head)
	for _, ty := range typists {
		if ty.text != final.Content || ty.version != final.Head {
			t.Fatalf("%s at v%d has %q; the server at v%d has %q", ty.name, ty.version, ty.text, final.Head, final.Content)
		}
		for _, r := range ty.typed {
			if strings.Count(final.Content, string(r)) != 1 {
				t.Fatalf("%s typed %q, found %d times in %q", ty.name, r, strings.Count(final.Content, string(r)), final.Content)
			}
		}
		if len(ty.apiOps) != 1 {
			t.Fatalf("%s saw %d ops from the API, want 1", ty.name, len(ty.apiOps))
		}
		// A small edit keeps most of the text (the diff's cleanup may
		// delete and reinsert a few runes around the change); a reload would
		// delete it all and insert it again.
		ins, kept := 0, 0
		for _, c := range ty.apiOps[0] {
			switch {
			case c.IsInsert():
				ins += c.Len()
			case c.IsRetain():
				kept += c.Len()
			}
		}
		if kept < utf8.RuneCountInString(before.Content)/2 || ins > 2*len("slow red-- edited over HTTP\n") {
			t.Fatalf("%s saw the PUT as %v: a reload, not a small op", ty.name, ty.apiOps[0])
		}
	}
}

// apiOpsAll reads a document's whole op log through GET /ops, in pages of
// at most size ops (?from=&to=), following the server's `next` too.
func apiOpsAll(a *apiServer, id string, size int) []doc.OpRecord {
	a.t.Helper()
	var recs []doc.OpRecord
	from := 0
	for {
		var page struct {
			Head int `json:"head"`
			Ops  []struct {
				Version int    `json:"version"`
				Op      ot.Op  `json:"op"`
				UID     string `json:"uid"`
				User    string `json:"user"`
				TS      string `json:"ts"`
			} `json:"ops"`
			Next *int `json:"next"`
		}
		a.call("GET", fmt.Sprintf("/api/docs/%s/ops?from=%d&to=%d", id, from, from+size), nil, 200, &page)
		if len(page.Ops) > size || (len(page.Ops) > 0 && page.Ops[0].Version != from) {
			a.t.Fatalf("page from %d: %d ops starting at v%d", from, len(page.Ops), page.Ops[0].Version)
		}
		for _, o := range page.Ops {
			if o.UID == "" || o.TS == "" {
				a.t.Fatalf("op v%d without uid or time: %+v", o.Version, o)
			}
			recs = append(recs, doc.OpRecord{Version: o.Version, Op: o.Op, UID: o.UID, User: o.User})
		}
		switch {
		case page.Next != nil:
			from = *page.Next
		case from+size < page.Head:
			from += size
		default:
			return recs
		}
	}
}

// TestAPIHistoryReplayAndExport builds a 1,000-op document with several
// authors and comments, checks that the content at every version equals a
// replay of GET /ops, then exports it and imports it into a fresh server:
// the same content at every version, the same comments, the same export.
func TestAPIHistoryReplayAndExport(t *testing.T) {
	t.Parallel()
	fast := func(c *server.Config) {
		c.NoSync = true            // durability is not the subject here
		c.File.SnapshotEvery = 100 // so that content at a version replays at most 100 ops
		c.File.Limits.OpRate, c.File.Limits.OpBurst = 100000, 100000
		c.File.Limits.FrameRate, c.File.Limits.FrameBurst = 100000, 100000
	}
	a := apiStart(t, fast)
	const id, total = "history", 1000
	a.call("POST", "/api/docs", map[string]string{"id": id}, 201, nil)
	ann := a.dial("ann")
	snap := ann.request(map[string]any{"type": "open", "doc": id})
	if snap.Type != "snapshot" {
		t.Fatalf("open: %s", snap.Raw)
	}
	typist := doc.NewTypist(42)
	text, v := "", 0
	var parent string
	for v < total {
		switch {
		case v%250 == 100: // an edit over HTTP, by another author
			a.call("PUT", "/api/docs/"+id+"/content", map[string]string{"content": "[HTTP] " + text}, 200, nil)
			f := ann.next("the PUT's op", func(f apiFrame) bool { return f.Type == "op" })
			var err error
			if text, err = ot.Apply(text, f.Op); err != nil {
				t.Fatal(err)
			}
			typist.Observe(f.Op)
			v++
			continue
		case v%300 == 150: // a comment, then a reply, then resolve the first
			req := map[string]any{"type": "comment", "doc": id, "action": "add", "version": v, "range": map[string]int{"from": 0, "to": 3}, "text": fmt.Sprintf("at v%d, @bob", v)}
			if parent != "" {
				req["parent"] = parent
			}
			f := ann.request(req)
			if f.Type != "comment" || f.Comment == nil {
				t.Fatalf("comment: %s", f.Raw)
			}
			if parent == "" {
				parent = f.Comment.ID
			} else if f := ann.request(map[string]any{"type": "comment", "doc": id, "action": "resolve", "comment_id": parent}); f.Type != "comment" {
				t.Fatalf("resolve: %s", f.Raw)
			}
		}
		op := typist.Next(utf8.RuneCountInString(text))
		var err error
		if text, err = ot.Apply(text, op); err != nil {
			t.Fatal(err)
		}
		if f := ann.request(map[string]any{"type": "op", "doc": id, "version": v, "op": op, "uid": fmt.Sprint("ann-", v)}); f.Type != "ack" || f.Version != v {
			t.Fatalf("op v%d: %s", v, f.Raw)
		}
		v++
	}

	recs := apiOpsAll(a, id, 300)
	if len(recs) != total {
		t.Fatalf("GET /ops gave %d ops, want %d", len(recs), total)
	}
	// contents[v] is the replay of the log up to v, one op at a time.
	contents := make([]string, total+1)
	for v := range total {
		next, err := doc.Replay(doc.Snapshot{Version: v, Content: contents[v]}, recs, v+1)
		if err != nil {
			t.Fatalf("replay to v%d: %v", v+1, err)
		}
		contents[v+1] = next
	}
	if contents[total] != text {
		t.Fatalf("the replay ends at %q, the editor at %q", contents[total], text)
	}
	checkVersions := func(who *apiServer) {
		t.Helper()
		for v, want := range contents {
			if got := who.getDoc(id, v); got.Content != want || got.Version != v || got.Head != total {
				t.Fatalf("GET ?version=%d: %+v; want %q at head %d", v, got, want, total)
			}
		}
	}
	checkVersions(a)

	exported := a.call("GET", "/api/docs/"+id+"/export", nil, 200, nil).body
	fresh := apiStart(t, fast)
	var info doc.Info
	fresh.call("POST", "/api/docs/import", exported, 201, &info)
	if info.ID != id || info.Version != total {
		t.Fatalf("import answered %+v", info)
	}
	checkVersions(fresh)
	stamp := regexp.MustCompile(`"exported_at":"[^"]*"`)
	again := fresh.call("GET", "/api/docs/"+id+"/export", nil, 200, nil).body
	if stamp.ReplaceAllString(string(again), "") != stamp.ReplaceAllString(string(exported), "") {
		t.Fatal("the imported document exports differently")
	}
	// Both servers show the same comments to an editor.
	comments := func(who *apiServer) string {
		f := who.dial("carol").request(map[string]any{"type": "open", "doc": id})
		var cs []map[string]any
		if err := json.Unmarshal(f.Comments, &cs); err != nil || len(cs) != 3 {
			t.Fatalf("comments: %s (%v)", f.Comments, err)
		}
		return string(f.Comments)
	}
	if c1, c2 := comments(a), comments(fresh); c1 != c2 {
		t.Fatalf("comments differ:\n%s\n%s", c1, c2)
	}
}
