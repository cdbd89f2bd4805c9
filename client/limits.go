package client

import (
	"bytes"
	"encoding/json"
	"math"
	"unicode/utf8"

	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/ot"
)

// Limits are the server's size limits as the client applies them: a local
// edit is sent as ops whose encoded frames take at most MaxFrameBytes and
// that insert at most MaxOpBytes.
type Limits struct {
	// MaxFrameBytes bounds one frame the client sends, JSON-encoded.
	MaxFrameBytes int
	// MaxOpBytes bounds the UTF-8 bytes one op inserts.
	MaxOpBytes int
	// MaxDocLen is the server's bound on a document's length in code
	// points; 0 when the server does not say.
	MaxDocLen int
}

// defaultLimitBytes is what the client assumes for both byte limits when
// the server names none (servers before limits were announced).
const defaultLimitBytes = 64 << 10

// limitsOf returns the limits to apply on a connection whose connected
// frame carried p (nil: none); a positive cfgMaxOp lowers MaxOpBytes.
func limitsOf(p *proto.Limits, cfgMaxOp int) Limits {
	l := Limits{MaxFrameBytes: defaultLimitBytes, MaxOpBytes: defaultLimitBytes}
	if p != nil {
		if p.MaxFrameBytes > 0 {
			l.MaxFrameBytes = p.MaxFrameBytes
		}
		if p.MaxOpBytes > 0 {
			l.MaxOpBytes = p.MaxOpBytes
		}
		l.MaxDocLen = max(p.MaxDocLen, 0)
	}
	if cfgMaxOp > 0 {
		l.MaxOpBytes = min(l.MaxOpBytes, cfgMaxOp)
	}
	return l
}

// opBudget bounds one op: the UTF-8 bytes it inserts, and the bytes of its
// JSON form (what it adds to an op frame).
type opBudget struct {
	insert int
	json   int
}

// fits reports whether op is within b.
func (b opBudget) fits(op ot.Op) bool {
	return insertBytes(op) <= b.insert && opJSONLen(op) <= b.json
}

// budgetLocked returns the budget of this document's ops: the frame limit
// less what the rest of an op frame takes at most (the largest id and
// version, the longest uid). Must be called with d.mu held.
func (d *Document) budgetLocked() opBudget {
	l := d.c.Limits()
	id := int64(math.MaxInt64)
	frame := encodeOpFrame(opRequest{ID: &id, Type: proto.TypeOp, Doc: d.id, Version: math.MaxInt, Op: ot.Op{}, UID: d.uid + "-18446744073709551615"})
	return opBudget{insert: l.MaxOpBytes, json: l.MaxFrameBytes - (len(frame) - len("[]"))}
}

// encodeOpFrame encodes an op frame as it is sent: without HTML escaping,
// so that the op takes exactly opJSONLen(op) bytes of it.
func encodeOpFrame(r opRequest) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		panic("client: encode op: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// opJSONLen returns len(op.AppendJSON(nil)) without encoding it.
func opJSONLen(op ot.Op) int {
	n := 2 + max(len(op)-1, 0)
	for _, c := range op {
		if c.IsInsert() {
			n += 2
			for _, r := range c.Text() {
				n += runeJSONLen(r)
			}
		} else {
			n += intLen(signedLen(c))
		}
	}
	return n
}

// runeJSONLen returns how many bytes ot's JSON encoder writes for r inside
// a string: quote, backslash, \n, \r and \t take two, the other control
// characters and U+2028/U+2029 six, and the rest their UTF-8 length (an
// invalid byte, never in a valid op, becomes the 3-byte U+FFFD).
func runeJSONLen(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '\u2028' || r == '\u2029':
		return 6
	case r == utf8.RuneError:
		return 3
	}
	return utf8.RuneLen(r)
}

// signedLen returns a retain's or delete's number as the JSON form has it.
func signedLen(c ot.Component) int {
	if c.IsDelete() {
		return -c.Len()
	}
	return c.Len()
}

func intLen(n int) int {
	l := 1
	if n < 0 {
		l++
		n = -n
	}
	for n >= 10 {
		n /= 10
		l++
	}
	return l
}

// splitOp cuts op into ops that each fit b and that, applied one after the
// other, do what op does. A rune is never cut. Each piece inserts or
// deletes something, however small b is, so that the cutting progresses.
func splitOp(op ot.Op, b opBudget) []ot.Op {
	if b.fits(op) {
		return []ot.Op{op}
	}
	var out []ot.Op
	var bld ot.Builder
	pos := 0          // where the next piece starts: the output of the pieces so far
	json, ins := 2, 0 // the current piece's JSON size and inserted bytes
	taken := 0        // its components, for the commas
	changed := false  // it inserts or deletes
	comma := func() int { return min(taken, 1) }
	flush := func() {
		if p := bld.Op(); !p.IsNoop() {
			out = append(out, p)
		}
		bld.Retain(pos)
		json, ins, taken, changed = 2+intLen(pos), 0, 1, false
		if pos == 0 {
			json, taken = 2, 0
		}
	}
	for _, c := range op {
		if !c.IsInsert() {
			cost := intLen(signedLen(c)) + comma()
			if changed && json+cost > b.json {
				flush()
				cost = intLen(signedLen(c)) + comma()
			}
			json += cost
			taken++
			if c.IsRetain() {
				bld.Retain(c.Len())
				pos += c.Len()
			} else {
				bld.Delete(c.Len())
				changed = true
			}
			continue
		}
		s := c.Text()
		for s != "" {
			cost := 2 + comma()
			cut, runes := 0, 0
			for cut < len(s) {
				r, size := utf8.DecodeRuneInString(s[cut:])
				jc := runeJSONLen(r)
				if (changed || cut > 0) && (json+cost+jc > b.json || ins+size > b.insert) {
					break
				}
				cost += jc
				ins += size
				cut += size
				runes++
			}
			if cut > 0 {
				bld.Insert(s[:cut])
				json += cost
				taken++
				pos += runes
				changed = true
				s = s[cut:]
			}
			if s != "" {
				flush()
			}
		}
	}
	if p := bld.Op(); !p.IsNoop() {
		out = append(out, p)
	}
	return out
}

// insertBytes returns how many bytes op inserts.
func insertBytes(op ot.Op) int {
	n := 0
	for _, c := range op {
		n += len(c.Text())
	}
	return n
}
