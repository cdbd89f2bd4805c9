package proto

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/ot"
)

// TestEncodeNoHTMLEscape: frames keep `<`, `>` and `&` as one byte each.
func TestEncodeNoHTMLEscape(t *testing.T) {
	got := string(Encode(Snapshot{Type: TypeSnapshot, Content: "<a&b>"}))
	if !strings.Contains(got, `"content":"<a&b>"`) {
		t.Fatalf("Encode escaped HTML: %s", got)
	}
	if strings.HasSuffix(got, "\n") {
		t.Fatalf("Encode ends with a newline: %q", got)
	}
}

// TestStreamMatchesEncode: WriteTo writes exactly the bytes Encode makes,
// whatever the content (chunk boundaries inside multi-byte runes, control
// characters, U+2028, `<`) and with or without the optional fields.
func TestStreamMatchesEncode(t *testing.T) {
	id := int64(7)
	parent := "cm_1"
	contents := []string{
		"",
		"hello",
		strings.Repeat("<", streamChunk+5),
		strings.Repeat("\x01\x1f\"\\", streamChunk/3),
		strings.Repeat("a", streamChunk-1) + "漢字\u2028😀" + strings.Repeat("é", streamChunk),
		strings.Repeat("😀", streamChunk/2+3),
	}
	comments := []Comment{
		{ID: "cm_1", Range: ot.Range{From: 1, To: 2}, User: User{ID: "u", Name: "<U>", Color: "#fff"}, Text: "a <b> \x02", CreatedAt: "t"},
		{ID: "cm_2", User: User{ID: "v"}, Text: "reply", Parent: &parent, Resolved: true, CreatedAt: "t", UpdatedAt: "u"},
	}
	members := []Member{{ClientID: "c_1", User: User{ID: "u", Name: "U", Color: "#000"}}}
	cursors := []Cursor{{Doc: "d", Version: 3, ClientID: "c_2", Ranges: []ot.Selection{{Anchor: 1, Head: 2}}}}
	for i, content := range contents {
		snaps := []Snapshot{
			{ID: &id, Type: TypeSnapshot, Doc: "d<", Version: 42, Epoch: "e1", Content: content, Comments: comments, Members: members, Cursors: cursors},
			{Type: TypeSnapshot, Doc: "d", Version: 0, Epoch: "e2", Reset: true, Content: content, Comments: []Comment{}, Members: []Member{}, Cursors: []Cursor{}},
			{Type: TypeSnapshot, Doc: "d", Content: content}, // nil lists
		}
		for j := range snaps {
			var buf bytes.Buffer
			n, err := snaps[j].WriteTo(&buf)
			if err != nil || n != int64(buf.Len()) {
				t.Fatalf("content %d snapshot %d: WriteTo = %d, %v (wrote %d)", i, j, n, err, buf.Len())
			}
			if want := Encode(snaps[j]); !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("content %d snapshot %d: WriteTo differs from Encode:\n%.300s\n%.300s", i, j, buf.Bytes(), want)
			}
			if !json.Valid(buf.Bytes()) {
				t.Fatalf("content %d snapshot %d: not JSON", i, j)
			}
		}
		ops := []DocOp{
			{Doc: "d", Version: 1, Op: ot.Op{ot.Retain(2), ot.Insert(content + "x"), ot.Delete(1)}, UID: "u-1", User: "u", ClientID: "c", TS: "t"},
			{Doc: "d", Version: 2, Op: ot.Op{ot.Insert("<>")}, UID: "u-2", TS: "t"},
		}
		for j, o := range []Opened{
			{ID: &id, Type: TypeOpened, Doc: "d", Version: 3, Epoch: "e", Ops: ops, Comments: comments, Members: members, Cursors: cursors},
			{Type: TypeOpened, Doc: "d", Version: 1, Epoch: "e", Ops: []DocOp{}, Comments: []Comment{}, Members: []Member{}, Cursors: []Cursor{}},
			{Type: TypeOpened, Doc: "d"},
		} {
			var buf bytes.Buffer
			if _, err := o.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			if want := Encode(o); !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("content %d opened %d: WriteTo differs from Encode:\n%.300s\n%.300s", i, j, buf.Bytes(), want)
			}
		}
	}
}

// TestStreamStopsAtWriteError: the first write error ends the stream.
func TestStreamStopsAtWriteError(t *testing.T) {
	w := &failAfter{n: 3}
	s := Snapshot{Type: TypeSnapshot, Content: strings.Repeat("x", 3*streamChunk)}
	if _, err := s.WriteTo(w); err == nil {
		t.Fatal("WriteTo ignored a write error")
	}
	if w.calls > 4 {
		t.Fatalf("WriteTo kept writing after the error: %d calls", w.calls)
	}
}

type failAfter struct{ n, calls int }

func (f *failAfter) Write(p []byte) (int, error) {
	f.calls++
	if f.calls > f.n {
		return 0, bytes.ErrTooLarge
	}
	return len(p), nil
}
