package proto

import (
	"io"
	"unicode/utf8"
)

// Large replies (a snapshot of a long document, an opened reply with many
// ops) are written to the connection in pieces rather than encoded into one
// []byte first: WriteTo streams the same JSON object that Encode would
// make, escaping the content a chunk at a time, so that the memory a reply
// costs while it is being sent is the content (shared with the session)
// plus one chunk.

// streamChunk is how much of a string WriteTo escapes at a time, in bytes
// (cut at a rune boundary). Escaped, a chunk is at most six times longer.
const streamChunk = 64 << 10

// snapshotHead holds the small fields of a Snapshot, in its field order.
type snapshotHead struct {
	ID      *int64 `json:"id,omitempty"`
	Type    string `json:"type"`
	Doc     string `json:"doc"`
	Version int    `json:"version"`
	Epoch   string `json:"epoch"`
	Reset   bool   `json:"reset,omitempty"`
}

// openedHead holds the small fields of an Opened, in its field order.
type openedHead struct {
	ID      *int64 `json:"id,omitempty"`
	Type    string `json:"type"`
	Doc     string `json:"doc"`
	Version int    `json:"version"`
	Epoch   string `json:"epoch"`
}

// WriteTo writes s as Encode would, in pieces: the content is escaped
// streamChunk bytes at a time and each comment on its own. It returns the
// bytes written and the first write error.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	sw := &streamWriter{w: w}
	sw.head(Encode(snapshotHead{ID: s.ID, Type: s.Type, Doc: s.Doc, Version: s.Version, Epoch: s.Epoch, Reset: s.Reset}))
	sw.raw(`,"content":`)
	sw.str(s.Content)
	sw.comments(s.Comments)
	sw.tail(s.Members, s.Cursors)
	return sw.n, sw.err
}

// Size is how many bytes s holds in its strings, about: a lower bound on
// its encoded size, which escaping can make up to six times larger.
func (s *Snapshot) Size() int {
	return 256 + len(s.Content) + commentsSize(s.Comments) + 128*(len(s.Members)+len(s.Cursors))
}

// WriteTo writes o as Encode would, in pieces: each op and each comment on
// its own. It returns the bytes written and the first write error.
func (o *Opened) WriteTo(w io.Writer) (int64, error) {
	sw := &streamWriter{w: w}
	sw.head(Encode(openedHead{ID: o.ID, Type: o.Type, Doc: o.Doc, Version: o.Version, Epoch: o.Epoch}))
	sw.raw(`,"ops":`)
	if o.Ops == nil {
		sw.raw("null")
	} else {
		sw.raw("[")
		for i := range o.Ops {
			if i > 0 {
				sw.raw(",")
			}
			sw.bytes(Encode(&o.Ops[i]))
		}
		sw.raw("]")
	}
	sw.comments(o.Comments)
	sw.tail(o.Members, o.Cursors)
	return sw.n, sw.err
}

// Size is how many bytes o holds in its strings, about (see
// Snapshot.Size).
func (o *Opened) Size() int {
	n := 256 + commentsSize(o.Comments) + 128*(len(o.Members)+len(o.Cursors))
	for _, op := range o.Ops {
		n += 96 + len(op.UID) + len(op.User) + len(op.ClientID)
		for _, c := range op.Op {
			n += 12 + len(c.Text())
		}
	}
	return n
}

func commentsSize(cs []Comment) int {
	n := 0
	for _, c := range cs {
		n += 256 + len(c.Text) + len(c.User.Name)
	}
	return n
}

// streamWriter writes JSON in pieces, keeping the count and the first
// error (after which it writes nothing).
type streamWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (sw *streamWriter) bytes(b []byte) {
	if sw.err != nil {
		return
	}
	n, err := sw.w.Write(b)
	sw.n += int64(n)
	sw.err = err
}

func (sw *streamWriter) raw(s string) { sw.bytes([]byte(s)) }

// head writes an encoded object without its closing brace.
func (sw *streamWriter) head(obj []byte) { sw.bytes(obj[:len(obj)-1]) }

// str writes s as a JSON string, escaping it a chunk at a time; chunks end
// at rune boundaries, so each escapes as it would in one piece.
func (sw *streamWriter) str(s string) {
	sw.raw(`"`)
	for s != "" && sw.err == nil {
		n := min(len(s), streamChunk)
		for n < len(s) && n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		if n == 0 { // cannot happen in valid UTF-8; never loop
			n = min(len(s), streamChunk)
		}
		q := Encode(s[:n])
		sw.bytes(q[1 : len(q)-1])
		s = s[n:]
	}
	sw.raw(`"`)
}

// comments writes `,"comments":[...]`, one comment at a time.
func (sw *streamWriter) comments(cs []Comment) {
	sw.raw(`,"comments":`)
	if cs == nil {
		sw.raw("null")
		return
	}
	sw.raw("[")
	for i := range cs {
		if i > 0 {
			sw.raw(",")
		}
		sw.bytes(Encode(&cs[i]))
	}
	sw.raw("]")
}

// tail writes the members and cursors and closes the object.
func (sw *streamWriter) tail(members []Member, cursors []Cursor) {
	sw.raw(`,"members":`)
	sw.bytes(Encode(members))
	sw.raw(`,"cursors":`)
	sw.bytes(Encode(cursors))
	sw.raw("}")
}
