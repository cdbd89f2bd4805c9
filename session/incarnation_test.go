package session_test

// Tests of exactly-once across reloads and of document incarnations
// (epochs), on the real server over raw WebSockets.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tandemhq/tandem/server"
)

// openRaw opens docID on c with the given fields added to the open frame
// and returns the answer (snapshot, opened or error).
func openRaw(t *testing.T, c *wsConn, docID string, extra map[string]any) map[string]json.RawMessage {
	t.Helper()
	f := map[string]any{"type": "open", "doc": docID}
	for k, v := range extra {
		f[k] = v
	}
	id := c.send(f)
	return c.reply(id)
}

// reply returns the frame answering request id, skipping the others.
func (c *wsConn) reply(id int64) map[string]json.RawMessage {
	c.tb.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				c.tb.Fatalf("connection closed (code %d) waiting for the answer to request %d", c.closeCode, id)
			}
			if m["id"] != nil && num(m["id"]) == int(id) {
				return m
			}
		case <-timeout:
			c.tb.Fatalf("timed out waiting for the answer to request %d", id)
		}
	}
}

// insertAt is the op inserting text at pos.
func insertAt(pos int, text string) []any {
	if pos == 0 {
		return []any{text}
	}
	return []any{pos, text}
}

// show formats a frame for a failure message.
func show(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// sendOp sends an op and returns its answer.
func sendOp(t *testing.T, c *wsConn, docID string, version int, op []any, uid string) map[string]json.RawMessage {
	t.Helper()
	return c.reply(c.send(map[string]any{"type": "op", "doc": docID, "version": version, "op": op, "uid": uid}))
}

// TestReusedUIDAfterReload is the reproduction of issue 13's first point:
// an op applied with uid U, the document unloaded, reopened by a second
// member who edits, and U sent again from a base inside the reloaded
// session's window (a client may resend an op rebased on later versions).
// Memory cannot tell that U is old; storage's uid index can. U is acked
// with its original version and applies nothing, and the other member
// stays open and keeps editing.
func TestReusedUIDAfterReload(t *testing.T) {
	ls := startLive(t, func(c *server.Config) { c.DocIdleTimeout = 30 * time.Millisecond })
	const id = "reused"
	ann := dialWS(t, ls.URL, "ann")
	if f := openRaw(t, ann, id, nil); str(f["type"]) != "snapshot" {
		t.Fatalf("open: %s", show(f))
	}
	for v, text := range []string{"one ", "two ", "three "} {
		if f := sendOp(t, ann, id, v, insertAt(v*4, text), fmt.Sprintf("ann-%d", v)); str(f["type"]) != "ack" || num(f["version"]) != v {
			t.Fatalf("op %d: %s", v, show(f))
		}
	}
	ann.close()
	waitFor(t, "the document to unload", func() bool { return ls.Server().Docs.Loaded() == 0 })

	bob := dialWS(t, ls.URL, "bob")
	snap := openRaw(t, bob, id, nil)
	if str(snap["type"]) != "snapshot" || num(snap["version"]) != 3 {
		t.Fatalf("bob's open: %s", show(snap))
	}
	if f := sendOp(t, bob, id, 3, []any{"B"}, "bob-0"); str(f["type"]) != "ack" || num(f["version"]) != 3 {
		t.Fatalf("bob's op: %s", show(f))
	}

	ann = dialWS(t, ls.URL, "ann")
	if f := openRaw(t, ann, id, map[string]any{"version": 4}); str(f["type"]) != "opened" {
		t.Fatalf("ann's reopen: %s", show(f))
	}
	// "ann-1" again, rebased on v4: inside the window the session holds.
	f := sendOp(t, ann, id, 4, []any{5, "two "}, "ann-1")
	if str(f["type"]) != "ack" || num(f["version"]) != 1 || str(f["uid"]) != "ann-1" {
		t.Fatalf("the resent uid: got %s, want an ack with its original version 1", show(f))
	}
	// Bob is still a member: his next op is acked and reaches ann.
	if f := sendOp(t, bob, id, 4, []any{"b"}, "bob-1"); str(f["type"]) != "ack" || num(f["version"]) != 4 {
		t.Fatalf("bob after the resend: %s", show(f))
	}
	if op := ann.expect("op"); str(op["uid"]) != "bob-1" {
		t.Fatalf("ann got %s, want bob's op", show(op))
	}
	if text, v := serverText(t, ls.URL, id); text != "bBone two three " || v != 5 {
		t.Fatalf("server text %q at v%d, want %q at v5 (the resend applied nothing)", text, v, "bBone two three ")
	}
}

// TestReopenAnotherIncarnation: snapshot and opened carry the document's
// epoch; a reopen with a version and the epoch of a document since deleted
// and created again under the same id gets a snapshot of the new one with
// reset true (never the new one's ops on the old text), and a reopen with
// the right epoch gets the ops as before.
func TestReopenAnotherIncarnation(t *testing.T) {
	ls := startLive(t, nil)
	const id = "reborn"
	ann := dialWS(t, ls.URL, "ann")
	snap := openRaw(t, ann, id, nil)
	oldEpoch := str(snap["epoch"])
	if oldEpoch == "" {
		t.Fatalf("snapshot without an epoch: %s", show(snap))
	}
	if f := sendOp(t, ann, id, 0, []any{"hello"}, "ann-0"); str(f["type"]) != "ack" {
		t.Fatal(show(f))
	}
	ann.close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ls.Server().Docs.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	bob := dialWS(t, ls.URL, "bob")
	snap = openRaw(t, bob, id, nil)
	newEpoch := str(snap["epoch"])
	if newEpoch == "" || newEpoch == oldEpoch {
		t.Fatalf("the new incarnation has epoch %q, the old one had %q", newEpoch, oldEpoch)
	}
	for v, ch := range "abcdef" {
		if f := sendOp(t, bob, id, v, insertAt(v, string(ch)), fmt.Sprintf("bob-%d", v)); str(f["type"]) != "ack" {
			t.Fatal(show(f))
		}
	}

	ann = dialWS(t, ls.URL, "ann")
	f := openRaw(t, ann, id, map[string]any{"version": 1, "epoch": oldEpoch})
	if str(f["type"]) != "snapshot" || string(f["reset"]) != "true" || str(f["content"]) != "abcdef" ||
		num(f["version"]) != 6 || str(f["epoch"]) != newEpoch {
		t.Fatalf("reopen with the old epoch: got %s, want a reset snapshot of \"abcdef\" at v6", show(f))
	}
	ann.close()

	cat := dialWS(t, ls.URL, "cat")
	f = openRaw(t, cat, id, map[string]any{"version": 4, "epoch": newEpoch})
	if str(f["type"]) != "opened" || str(f["epoch"]) != newEpoch || num(f["version"]) != 6 || f["reset"] != nil {
		t.Fatalf("reopen with the current epoch: %s", show(f))
	}
	var ops []map[string]json.RawMessage
	if err := json.Unmarshal(f["ops"], &ops); err != nil || len(ops) != 2 {
		t.Fatalf("opened ops %s: %v", f["ops"], err)
	}
}
