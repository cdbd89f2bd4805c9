package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/natsstore"
	"github.com/tandemhq/tandem/ot"
)

// editLoad is what concurrentEdits does: clients spread over the nodes,
// each editing its documents at random for a number of steps.
type editLoad struct {
	clients int // spread over the nodes round robin
	docs    int // each client edits doc (client index mod docs)
	steps   int // edits per client
	prefix  string
	// during, if set, runs beside the editors (server-side edits).
	during func(ids []string)
}

// concurrentEdits runs the load, waits until everything is at rest, and
// checks convergence: every client's text equals what every node serves
// and what replaying the stream from empty gives. It returns the docs' ids.
func concurrentEdits(t *testing.T, nodes []*node, st *natsstore.Store, l editLoad) []string {
	t.Helper()
	ids := make([]string, l.docs)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-doc%d", l.prefix, i)
	}
	type edited struct {
		c *client.Client
		d *client.Document
	}
	eds := make([]edited, l.clients)
	for i := range eds {
		n := nodes[i%len(nodes)]
		c := dial(t, n.ws, fmt.Sprintf("u%d", i))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		d, err := c.OpenDoc(ctx, ids[i%l.docs])
		cancel()
		if err != nil {
			t.Fatalf("client %d opens %s on %s: %v", i, ids[i%l.docs], n.name, err)
		}
		eds[i] = edited{c, d}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, l.clients)
	for i := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := editor{d: eds[i].d, rng: rand.New(rand.NewPCG(uint64(i), 7))}
			for range l.steps {
				if err := e.step(); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				time.Sleep(time.Duration(5+e.rng.IntN(20)) * time.Millisecond) // typing speed
			}
		}()
	}
	if l.during != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.during(ids)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// At rest: every client synced, then every client of a document at
	// the log's head.
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for i, e := range eds {
		if err := e.d.WaitSynced(ctx); err != nil {
			t.Fatalf("client %d not synced: %v", i, err)
		}
	}
	t.Logf("%d clients × %d edits on %d docs over %d nodes in %v", l.clients, l.steps, l.docs, len(nodes), time.Since(start).Round(time.Millisecond))
	defer func() {
		var conflicts int64
		for _, n := range nodes {
			if n.srv != nil {
				conflicts += n.srv.NATS.Stats().OpConflicts
			}
		}
		t.Logf("op conflicts so far (appends that lost to another node): %d", conflicts)
	}()
	for k, id := range ids {
		want, ops := replay(t, st, id)
		head := len(ops)
		if k == 0 {
			t.Logf("%s: v%d, %d code points", id, head, len([]rune(want)))
		}
		seen := map[string]int{}
		for _, op := range ops {
			seen[op.UID]++
			if seen[op.UID] > 1 {
				t.Fatalf("%s: uid %s applied twice", id, op.UID)
			}
		}
		for i := k; i < len(eds); i += l.docs {
			d := eds[i].d
			waitFor(t, 60*time.Second, fmt.Sprintf("client %d at the head v%d of %s (at v%d)", i, head, id, d.Version()),
				func() bool { return d.Version() == head && d.Synced() })
			if got := d.Text(); got != want {
				t.Fatalf("%s: client %d has %q, the replayed stream %q", id, i, got, want)
			}
		}
		for _, n := range nodes {
			if got := getDoc(t, n, id); got.Version != head || got.Content != want {
				t.Fatalf("%s: node %s serves v%d %q, the stream v%d %q", id, n.name, got.Version, got.Content, head, want)
			}
		}
	}
	for _, e := range eds {
		_ = e.d.Close(ctx)
	}
	return ids
}

// TestDocsAcrossNodes: three nodes on one NATS server, 30 editing clients
// spread over them, random concurrent edits with multi-byte text on one
// document, then on 20 documents at once: every client converges on what
// every node serves, which is what replaying the stream from empty gives.
func TestDocsAcrossNodes(t *testing.T) {
	ns := natstest.Run(t)
	prefix := testPrefix()
	url := ns.ClientURL()
	nodes := startNodes(t, []string{url, url, url}, prefix, 1)
	st := openStore(t, url, prefix, 1)
	t.Run("one doc", func(t *testing.T) {
		concurrentEdits(t, nodes, st, editLoad{clients: 30, docs: 1, steps: 80, prefix: "one"})
	})
	t.Run("twenty docs", func(t *testing.T) {
		concurrentEdits(t, nodes, st, editLoad{clients: 30, docs: 20, steps: 50, prefix: "twenty"})
	})
	// Where each edit lands, under contention: 30 clients on the three
	// nodes put markers at the start or the end of one text; every marker
	// is whole and once in the log, and no op lands inside another.
	t.Run("markers", func(t *testing.T) {
		var urls []string
		for i := range 30 {
			urls = append(urls, nodes[i%3].ws)
		}
		m := startMarkers(t, urls, "markers")
		waitFor(t, 60*time.Second, "600 edits acked", func() bool { return m.total() >= 600 })
		m.finish(t, func() (string, []doc.OpRecord) { return replay(t, st, "markers") })
	})
	// Server-side edits of several ops each (a replaced text over the op
	// size limit is split) through every node, while editors type.
	t.Run("large replaces beside editors", func(t *testing.T) {
		concurrentEdits(t, nodes, st, editLoad{clients: 6, docs: 1, steps: 40, prefix: "large", during: func(ids []string) {
			for k := range 3 {
				n := nodes[k%3]
				// Nothing in common with the text before: the diff inserts
				// all of it, ~75 KiB, which takes two ops.
				alphabet := []string{"αβγδε ", "абвгд ", "日本語文字 "}[k]
				content := strings.Repeat(alphabet, 75<<10/len(alphabet))
				body, _ := json.Marshal(map[string]string{"content": content})
				if st := httpDo(t, "PUT", n.http+"/api/docs/"+ids[0]+"/content", strings.NewReader(string(body)), "application/json", nil); st != 200 {
					t.Errorf("PUT through %s: %d", n.name, st)
				}
			}
		}})
		_, ops := replay(t, st, "large-doc0")
		split := 0
		for _, o := range ops {
			if strings.HasSuffix(o.UID, ".2") {
				split++
			}
		}
		if split < 3 {
			t.Fatalf("%d replaces were split in two ops, want 3", split)
		}
	})
}

// TestDocPresenceAcrossNodes: editors of one document on three nodes list
// each other, see each other's cursors at the right place, and each
// other's comments; one leaving is seen leave on every node.
func TestDocPresenceAcrossNodes(t *testing.T) {
	ns := natstest.Run(t)
	prefix := testPrefix()
	url := ns.ClientURL()
	nodes := startNodes(t, []string{url, url, url}, prefix, 1)
	const id = "shared"
	var docs []*client.Document
	for i, n := range nodes {
		c := dial(t, n.ws, fmt.Sprintf("ed%d", i))
		d, err := c.OpenDoc(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	for i, d := range docs {
		waitFor(t, memberBound, fmt.Sprintf("editor %d lists the three", i), func() bool {
			if len(d.Members()) != 3 {
				t.Logf("editor %d: %v", i, d.Members())
			}
			return len(d.Members()) == 3
		})
	}
	if err := docs[0].Insert(0, "日本語 text"); err != nil {
		t.Fatal(err)
	}
	if err := docs[0].WaitSynced(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		waitFor(t, 10*time.Second, "the text everywhere", func() bool { return d.Text() == "日本語 text" })
	}
	// Editor 2 puts its cursor after 語; editors 0 and 1 see it there.
	if err := docs[2].SetCursor([]ot.Selection{{Anchor: 3, Head: 3}}); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs[:2] {
		waitFor(t, 10*time.Second, fmt.Sprintf("editor %d sees editor 2's cursor", i), func() bool {
			for _, c := range d.Cursors() {
				if c.User.ID == "ed2" && len(c.Ranges) == 1 && c.Ranges[0].Head == 3 {
					return true
				}
			}
			return false
		})
	}
	// A comment added on node 1 reaches the editors on nodes 2 and 3.
	if _, err := docs[0].AddComment(ctxT(t), ot.Range{From: 0, To: 3}, "look @ed1", ""); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		waitFor(t, 10*time.Second, fmt.Sprintf("editor %d has the comment", i), func() bool {
			cs := d.Comments()
			return len(cs) == 1 && cs[0].Text == "look @ed1" && cs[0].Range == ot.Range{From: 0, To: 3}
		})
	}
	if err := docs[1].Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		waitFor(t, memberBound, fmt.Sprintf("editor %d sees editor 1 leave", i), func() bool { return len(docs[i].Members()) == 2 })
	}
}
