package doc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// The rope is what ot applies ops to in place, and what ot.Invert reads.
var (
	_ ot.Text   = (*Rope)(nil)
	_ ot.Slicer = (*Rope)(nil)
)

// Tree shape. A leaf holds at most leafMax bytes; every leaf but a lone root
// holds at least leafMin. An inner node has at most nodeMax children; every
// inner node but the root has at least nodeMin, and the root at least 2.
//
// leafMax trades the memmove of an in-leaf edit (half a leaf on average)
// against the number of leaves, splits and descents. Measured on the 2-core
// dev machine with 512, 1024 and 2048 bytes: the automerge-paper trace
// replays at 15-17 ns/edit with each (BenchmarkRopeTrace), and ASCII typing
// at 17 ns; 512 is 8% faster at random positions in a 100k document, 1024
// 10% faster at typing 3-byte text (fewer splits), and 2048 slower at
// random positions. 1024 it is: it also halves the node count of 512, so
// the tree is three levels deep up to about 3 MB.
const (
	leafMax = 1024
	leafMin = leafMax / 4
	// leafFill is the most a leaf is filled to when text is cut into
	// leaves, leaving room to type. A cut moves forward to the next code
	// point boundary, by up to utf8.UTFMax-1 bytes, and still ends within
	// leafMax.
	leafFill = leafMax * 3 / 4
	nodeMax  = 16
	nodeMin  = nodeMax / 2
)

// Rope is a plain-text sequence addressed by Unicode code point, the content
// of a collaborative document. Positions and lengths count code points, not
// bytes or UTF-16 units: "e\u0301" (é with a combining accent) is two. The
// zero value is an empty rope ready to use.
//
// Insert, Delete and Slice take O(log n) time plus the length of the text
// they copy, and String returns the whole text in O(n) with one allocation.
// Len and ByteLen are O(1).
//
// The rope is a B-tree of chunks: each leaf holds up to 1 KiB of UTF-8 in a
// fixed array, with its code point count; each inner node holds up to 16
// children and the summed code point and byte counts of its subtree, so a
// code point position finds its leaf in one descent. Splits on insert and
// merges on delete keep every leaf at the same depth. This beats the other
// usual editor buffers for a server that holds many documents edited by
// several people at once: a gap buffer is faster for one cursor, but every
// jump between collaborators' cursors moves the gap (O(n) memmove) and
// mapping code points to bytes needs a scan or a side index; a piece table
// grows with every edit, keeps deleted text forever in its add buffer, and
// still needs a balanced tree over its pieces to find a position in O(log n).
// A chunked B-tree has an O(log n) worst case, memory proportional to the
// text, and the locality of an array within each leaf.
//
// The rope remembers the last leaf it edited, where that leaf starts and the
// path to it from the root. An edit that falls inside that leaf and keeps it
// within its size bounds (the common case: typing and backspacing) skips the
// descent, touches only that leaf and the counts on the path, and allocates
// nothing. Any split or merge forgets the cursor.
//
// Insert, Delete and Slice panic on out-of-range arguments, which are
// internal invariants: callers validate ops first (ot.ApplyTo). A Rope is not
// safe for concurrent use.
type Rope struct {
	root   *node // nil when the rope is empty
	height int   // inner levels above the leaves; 0 when root is a leaf or nil

	// The cursor cache. leaf is nil when the cache is invalid; otherwise leaf
	// is the last leaf edited, start the code point position of its first
	// character, and path the inner nodes from the root down to its parent.
	// Code point hintChar of leaf starts at byte hintByte: the end of the
	// last edit, from where the next one scans in a non-ASCII leaf.
	leaf     *node
	start    int
	path     []*node
	hintChar int
	hintByte int
}

// node is a leaf when kids is nil, and an inner node otherwise.
type node struct {
	chars int     // code points in the subtree
	bytes int     // bytes in the subtree
	kids  []*node // inner node: children, all of the same height
	text  []byte  // leaf: whole code points of UTF-8, in the leafNode's buf
}

// leafNode gives a leaf its text buffer in the same allocation.
type leafNode struct {
	node
	buf [leafMax]byte
}

func (n *node) isLeaf() bool { return n.kids == nil }

// underflow reports whether n is below its minimum size as a non-root node.
func (n *node) underflow() bool {
	if n.isLeaf() {
		return n.bytes < leafMin
	}
	return len(n.kids) < nodeMin
}

// newLeaf returns a leaf holding b, which is whole code points of UTF-8 and
// at most leafMax bytes.
func newLeaf[T string | []byte](b T) *node {
	l := new(leafNode)
	l.text = append(l.buf[:0], b...)
	l.bytes = len(l.text)
	l.chars = runeCount(l.text)
	return &l.node
}

// setText makes b the text of the leaf n; buf is n's empty buffer.
func (n *node) setText(b, buf []byte) {
	n.text = append(buf, b...)
	n.bytes = len(b)
	n.chars = runeCount(b)
}

// newInner returns an inner node with a copy of kids as its children.
func newInner(kids []*node) *node {
	n := &node{kids: make([]*node, len(kids), nodeMax+1)}
	copy(n.kids, kids)
	n.recount()
	return n
}

// recount sets the counts of the inner node n from its children.
func (n *node) recount() {
	n.chars, n.bytes = 0, 0
	for _, k := range n.kids {
		n.chars += k.chars
		n.bytes += k.bytes
	}
}

// setKids replaces the children of n with kids, reusing n's slice.
func (n *node) setKids(kids []*node) {
	old := n.kids
	n.kids = append(n.kids[:0], kids...)
	clear(old[len(n.kids):cap(old)]) // let dropped nodes be collected
	n.recount()
}

// NewRope returns a rope holding s, built bottom-up in O(len(s)): balanced,
// with leaves about three quarters full so that typing into them does not
// split them at once. Invalid UTF-8 in s is replaced with U+FFFD; a valid s
// is kept byte for byte.
func NewRope(s string) *Rope {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, string(utf8.RuneError))
	}
	r := new(Rope)
	r.root, r.height = build(s)
	return r
}

// build returns the root and height of a balanced tree holding s, or nil for
// an empty s. s must be valid UTF-8.
func build(s string) (*node, int) {
	if s == "" {
		return nil, 0
	}
	nodes := appendLeaves(nil, s)
	h := 0
	for len(nodes) > 1 {
		nodes = group(nodes)
		h++
	}
	return nodes[0], h
}

// pieceCount returns how many leaves size bytes of text are cut into.
func pieceCount(size int) int { return (size + leafFill - 1) / leafFill }

// cut returns the length of the next of m near-equal pieces of b: the even
// share of b, moved forward to a code point boundary. Shares computed this
// way never grow, so every piece is at most leafFill+3 <= leafMax bytes when
// m is pieceCount(len(b)), and when m > 1 every piece is over leafFill/2-4
// >= leafMin bytes.
func cut[T string | []byte](b T, m int) int {
	i := (len(b) + m - 1) / m
	for i < len(b) && b[i]&0xC0 == 0x80 {
		i++
	}
	return i
}

// appendLeaves appends to dst the leaves holding b, valid UTF-8, cut into
// near-equal pieces.
func appendLeaves[T string | []byte](dst []*node, b T) []*node {
	for m := pieceCount(len(b)); len(b) > 0; m-- {
		i := cut(b, m)
		dst = append(dst, newLeaf(b[:i]))
		b = b[i:]
	}
	return dst
}

// group returns new parents for nodes, in order, with near-equal fan-out:
// one parent when len(nodes) <= nodeMax, and otherwise parents of between
// nodeMin and nodeMax children each.
func group(nodes []*node) []*node {
	m := (len(nodes) + nodeMax - 1) / nodeMax
	parents := make([]*node, 0, m)
	for ; m > 0; m-- {
		i := (len(nodes) + m - 1) / m
		parents = append(parents, newInner(nodes[:i]))
		nodes = nodes[i:]
	}
	return parents
}

// Len returns the length of the text in code points.
func (r *Rope) Len() int {
	if r.root == nil {
		return 0
	}
	return r.root.chars
}

// ByteLen returns the length of the text in bytes of UTF-8.
func (r *Rope) ByteLen() int {
	if r.root == nil {
		return 0
	}
	return r.root.bytes
}

// String returns the whole text, in one allocation of exactly its size.
func (r *Rope) String() string {
	if r.root == nil {
		return ""
	}
	var sb strings.Builder
	sb.Grow(r.root.bytes)
	r.root.writeRange(&sb, 0, r.root.bytes)
	return sb.String()
}

// Slice returns the n code points starting at pos. It panics unless
// 0 <= pos, 0 <= n and pos+n <= Len().
func (r *Rope) Slice(pos, n int) string {
	if pos < 0 || n < 0 || n > r.Len()-pos {
		panicRange("Slice", pos, n, r.Len())
	}
	if n == 0 {
		return ""
	}
	from, to := r.root.byteAt(pos), r.root.byteAt(pos+n)
	var sb strings.Builder
	sb.Grow(to - from)
	r.root.writeRange(&sb, from, to)
	return sb.String()
}

// byteAt returns the byte offset in n's subtree of code point pos,
// 0 <= pos <= n.chars.
func (n *node) byteAt(pos int) int {
	b := 0
	for !n.isLeaf() {
		i := 0
		for ; i < len(n.kids)-1 && pos >= n.kids[i].chars; i++ {
			pos -= n.kids[i].chars
			b += n.kids[i].bytes
		}
		n = n.kids[i]
	}
	return b + n.byteOffset(pos)
}

// writeRange writes bytes [from, to) of n's subtree to sb.
func (n *node) writeRange(sb *strings.Builder, from, to int) {
	if n.isLeaf() {
		sb.Write(n.text[from:to])
		return
	}
	for _, k := range n.kids {
		if to <= 0 {
			return
		}
		if from < k.bytes {
			k.writeRange(sb, max(from, 0), min(to, k.bytes))
		}
		from -= k.bytes
		to -= k.bytes
	}
}

// Insert inserts s before code point pos. It panics unless
// 0 <= pos <= Len() and s is valid UTF-8; an empty s changes nothing.
func (r *Rope) Insert(pos int, s string) {
	if pos < 0 || pos > r.Len() {
		panicRange("Insert", pos, 0, r.Len())
	}
	c := 1 // code points in s
	if len(s) != 1 || s[0] >= utf8.RuneSelf {
		c = validCount(s)
		if c == 0 {
			return
		}
	}
	if r.root == nil {
		r.root, r.height = build(s)
		return
	}

	l := r.leaf
	if l == nil || pos < r.start || pos > r.start+l.chars {
		r.seek(pos)
		l = r.leaf
	}
	if len(l.text)+len(s) <= leafMax {
		// In place: no allocation, no change of structure.
		off := r.offset(pos - r.start)
		end := len(l.text)
		l.text = l.text[:end+len(s)] // sets only the length
		copy(l.text[off+len(s):], l.text[off:end])
		if len(s) == 1 {
			l.text[off] = s[0]
		} else {
			copy(l.text[off:], s)
		}
		l.chars += c
		l.bytes += len(s)
		r.hintChar, r.hintByte = pos-r.start+c, off+len(s)
		for _, p := range r.path {
			p.chars += c
			p.bytes += len(s)
		}
		return
	}

	r.leaf = nil // the leaf splits
	extra := r.root.insert(pos, s, c)
	if len(extra) > 0 {
		nodes := append([]*node{r.root}, extra...)
		for len(nodes) > 1 {
			nodes = group(nodes)
			r.height++
		}
		r.root = nodes[0]
	}
}

// validCount returns the number of code points in s, and panics if s is not
// valid UTF-8.
func validCount(s string) int {
	if len(s) <= utf8.UTFMax && s != "" {
		if r, size := utf8.DecodeRuneInString(s); size == len(s) && (r != utf8.RuneError || size > 1) {
			return 1 // one code point, the usual keystroke
		}
	}
	if !utf8.ValidString(s) {
		panic(fmt.Sprintf("doc: Rope.Insert of invalid UTF-8 %q", s))
	}
	return utf8.RuneCountInString(s)
}

// seek points the cursor cache at the leaf holding code point pos, or at the
// last leaf when pos == Len(). The rope must not be empty.
func (r *Rope) seek(pos int) {
	r.path = r.path[:0]
	n, start := r.root, 0
	for !n.isLeaf() {
		r.path = append(r.path, n)
		i := 0
		for ; i < len(n.kids)-1 && pos-start >= n.kids[i].chars; i++ {
			start += n.kids[i].chars
		}
		n = n.kids[i]
	}
	r.leaf, r.start = n, start
	r.hintChar, r.hintByte = 0, 0
}

// insert inserts s, c code points, before code point pos of n's subtree. If
// n overflows, n keeps the first part and insert returns the new siblings,
// of n's height, that hold the rest and go right after n.
func (n *node) insert(pos int, s string, c int) []*node {
	if n.isLeaf() {
		off := n.byteOffset(pos)
		var buf [2 * leafMax]byte // for the usual short insert
		b := buf[:0]
		if n.bytes+len(s) > len(buf) {
			b = make([]byte, 0, n.bytes+len(s))
		}
		b = append(b, n.text[:off]...)
		b = append(b, s...)
		b = append(b, n.text[off:]...)
		i := cut(b, pieceCount(len(b)))
		n.setText(b[:i], n.text[:0])
		return appendLeaves(nil, b[i:])
	}
	i, start := 0, 0
	for ; i < len(n.kids)-1 && pos-start >= n.kids[i].chars; i++ {
		start += n.kids[i].chars
	}
	extra := n.kids[i].insert(pos-start, s, c)
	n.chars += c
	n.bytes += len(s)
	if len(extra) == 0 {
		return nil
	}
	n.kids = slices.Insert(n.kids, i+1, extra...)
	if len(n.kids) <= nodeMax {
		return nil
	}
	parts := group(n.kids)
	n.setKids(parts[0].kids)
	return parts[1:]
}

// Delete deletes the n code points starting at pos. It panics unless
// 0 <= pos, 0 <= n and pos+n <= Len(); n == 0 changes nothing.
func (r *Rope) Delete(pos, n int) {
	if pos < 0 || n < 0 || n > r.Len()-pos {
		panicRange("Delete", pos, n, r.Len())
	}
	if n == 0 {
		return
	}
	if n == r.root.chars {
		clear(r.path)
		*r = Rope{path: r.path[:0]}
		return
	}

	l := r.leaf
	if l == nil || pos < r.start || pos >= r.start+l.chars {
		r.seek(pos)
		l = r.leaf
	}
	if pos+n <= r.start+l.chars {
		var from, to int
		if l.bytes == l.chars {
			from = pos - r.start
			to = from + n
		} else {
			from = r.offset(pos - r.start)
			to = from + byteIndex(l.text[from:], n)
		}
		if l.bytes-(to-from) >= leafMin || len(r.path) == 0 {
			// In place; a lone root leaf may shrink to any size but empty,
			// which the whole-text case above handles.
			copy(l.text[from:], l.text[to:])
			l.text = l.text[:len(l.text)-(to-from)]
			l.chars -= n
			l.bytes -= to - from
			r.hintChar, r.hintByte = pos-r.start, from
			for _, p := range r.path {
				p.chars -= n
				p.bytes -= to - from
			}
			return
		}
	}

	r.leaf = nil // leaves merge or go
	r.root.delete(pos, n)
	for !r.root.isLeaf() && len(r.root.kids) == 1 {
		r.root = r.root.kids[0]
		r.height--
	}
}

// delete deletes the cnt code points from pos of n's subtree, which must
// keep at least one. Afterwards n may underflow, and if n has one child that
// child may too, and so on down, but every other node of the subtree is
// within its bounds (see fixKids).
func (n *node) delete(pos, cnt int) {
	if n.isLeaf() {
		from := n.byteOffset(pos)
		to := from + byteIndex(n.text[from:], cnt)
		n.text = append(n.text[:from], n.text[to:]...)
		n.chars -= cnt
		n.bytes -= to - from
		return
	}
	end := pos + cnt
	kept := n.kids[:0]
	start := 0
	for _, k := range n.kids {
		kStart, kEnd := start, start+k.chars
		start = kEnd
		switch {
		case kEnd <= pos || kStart >= end:
			// untouched
		case pos <= kStart && kEnd <= end:
			continue // wholly deleted
		default:
			lo, hi := max(pos, kStart)-kStart, min(end, kEnd)-kStart
			k.delete(lo, hi-lo)
		}
		kept = append(kept, k)
	}
	clear(n.kids[len(kept):])
	n.kids = kept
	n.recount()
	n.fixKids()
}

// fixKids merges or rebalances underflowing children of n with a neighbour
// until none underflows or n has a single child.
//
// Its precondition, and its postcondition for n, is that every child is
// "valid but thin": within bounds except that it may underflow, and so may
// its child if it has only one, and so on down a chain of only children.
// Such chains come from deletes that leave a node one child; they are
// repaired one level up, where a sibling exists.
//
// It terminates: a merge removes a node, and a rebalance leaves both nodes
// within bounds unless fixing their children merged some of those.
func (n *node) fixKids() {
	for i := 0; i < len(n.kids) && len(n.kids) > 1; {
		if !n.kids[i].underflow() {
			i++
			continue
		}
		if i == len(n.kids)-1 {
			i--
		}
		n.join(i) // then look at kids[i] again
	}
}

// join merges n.kids[i+1] into n.kids[i] if they fit in one node, and
// otherwise shares their contents evenly between them.
func (n *node) join(i int) {
	a, b := n.kids[i], n.kids[i+1]
	if a.isLeaf() {
		if a.bytes+b.bytes <= leafMax {
			a.text = append(a.text, b.text...)
			a.chars += b.chars
			a.bytes += b.bytes
			n.kids = slices.Delete(n.kids, i+1, i+2)
			return
		}
		var buf [2 * leafMax]byte
		all := append(append(buf[:0], a.text...), b.text...)
		k := cut(all, 2)
		a.setText(all[:k], a.text[:0])
		b.setText(all[k:], b.text[:0])
		return
	}
	if len(a.kids)+len(b.kids) <= nodeMax {
		a.kids = append(a.kids, b.kids...)
		a.chars += b.chars
		a.bytes += b.bytes
		n.kids = slices.Delete(n.kids, i+1, i+2)
		a.fixKids() // the seam may join two thin nodes
		return
	}
	var buf [2 * nodeMax]*node
	all := append(append(buf[:0], a.kids...), b.kids...)
	k := len(all) / 2
	a.setKids(all[:k])
	b.setKids(all[k:])
	a.fixKids()
	b.fixKids()
}

// byteOffset returns the byte offset of code point k in the leaf n,
// 0 <= k <= n.chars.
func (n *node) byteOffset(k int) int {
	if n.bytes == n.chars {
		return k // all ASCII
	}
	return byteIndex(n.text, k)
}

// offset returns the byte offset of code point k in the cached leaf,
// 0 <= k <= leaf.chars. In a non-ASCII leaf it scans from the nearest known
// boundary: the leaf's start, its end or the hint.
func (r *Rope) offset(k int) int {
	l := r.leaf
	if l.bytes == l.chars {
		return k // all ASCII
	}
	hc, hb := r.hintChar, r.hintByte
	if k >= hc {
		if k-hc <= l.chars-k {
			return hb + byteIndex(l.text[hb:], k-hc)
		}
		return byteIndexBack(l.text, l.chars-k)
	}
	if hc-k <= k {
		return byteIndexBack(l.text[:hb], hc-k)
	}
	return byteIndex(l.text, k)
}

// byteIndex returns the byte offset in b, valid UTF-8, of code point k, or
// len(b) when b holds k code points. It counts the bytes that start a code
// point (those not of the form 10xxxxxx) eight at a time.
func byteIndex(b []byte, k int) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		starts := 8 - bits.OnesCount64(w&^(w<<1)&0x8080808080808080)
		if starts > k {
			break
		}
		k -= starts
	}
	for ; i < len(b); i++ {
		if b[i]&0xC0 != 0x80 {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return i
}

// byteIndexBack returns the byte offset in b, valid UTF-8, of the code point
// k code points before its end (len(b) for k == 0). It scans backwards,
// eight bytes at a time where it can.
func byteIndexBack(b []byte, k int) int {
	i := len(b)
	if k == 0 {
		return i
	}
	for ; i >= 8; i -= 8 {
		w := binary.LittleEndian.Uint64(b[i-8:])
		starts := 8 - bits.OnesCount64(w&^(w<<1)&0x8080808080808080)
		if starts >= k {
			break
		}
		k -= starts
	}
	for i > 0 {
		i--
		if b[i]&0xC0 != 0x80 {
			k--
			if k == 0 {
				return i
			}
		}
	}
	return 0
}

// runeCount returns the number of code points in b, valid UTF-8.
func runeCount(b []byte) int {
	n := len(b)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		n -= bits.OnesCount64(w &^ (w << 1) & 0x8080808080808080)
	}
	for ; i < len(b); i++ {
		if b[i]&0xC0 == 0x80 {
			n--
		}
	}
	return n
}

// panicRange panics for an out-of-range call; it is kept out of line so the
// checks stay cheap.
//
//go:noinline
func panicRange(method string, pos, n, length int) {
	if method == "Insert" {
		panic(fmt.Sprintf("doc: Rope.Insert at %d out of range [0, %d]", pos, length))
	}
	panic(fmt.Sprintf("doc: Rope.%s(%d, %d) out of range for length %d", method, pos, n, length))
}

// check verifies the rope's invariants: counts agree with the text, leaves
// hold whole code points within their size bounds and lie at the same depth,
// inner nodes are within their fan-out bounds, and the cursor cache, if
// valid, names a real leaf, its start and its path. Tests call it after
// every edit.
func (r *Rope) check() error {
	if r.root == nil {
		if r.height != 0 || r.leaf != nil {
			return fmt.Errorf("empty rope with height %d, cached leaf %v", r.height, r.leaf != nil)
		}
		return nil
	}
	if err := r.root.check(r.height, true); err != nil {
		return err
	}
	if r.leaf == nil {
		return nil
	}
	if len(r.path) != r.height {
		return fmt.Errorf("cursor path has %d nodes, height is %d", len(r.path), r.height)
	}
	n, start := r.root, 0
	for d, p := range r.path {
		if p != n {
			return fmt.Errorf("cursor path node %d is not on the tree path", d)
		}
		next := -1
		for i, k := range n.kids {
			if k == r.leaf || (d+1 < len(r.path) && k == r.path[d+1]) {
				next = i
				break
			}
			start += k.chars
		}
		if next < 0 {
			return fmt.Errorf("cursor path breaks at depth %d", d)
		}
		n = n.kids[next]
	}
	if n != r.leaf {
		return errors.New("cursor leaf is not at the end of its path")
	}
	if start != r.start {
		return fmt.Errorf("cursor leaf starts at %d, cache says %d", start, r.start)
	}
	l := r.leaf
	if r.hintChar < 0 || r.hintChar > l.chars || r.hintByte != byteIndex(l.text, r.hintChar) {
		return fmt.Errorf("cursor hint: code point %d at byte %d, leaf %q", r.hintChar, r.hintByte, l.text)
	}
	return nil
}

// check verifies the subtree of n, which is height levels above the leaves.
func (n *node) check(height int, root bool) error {
	if n.isLeaf() {
		switch {
		case height != 0:
			return fmt.Errorf("leaf %d levels above the leaf level", height)
		case n.bytes != len(n.text):
			return fmt.Errorf("leaf bytes %d, text has %d", n.bytes, len(n.text))
		case !utf8.Valid(n.text):
			return fmt.Errorf("leaf %q is not valid UTF-8", n.text)
		case n.chars != utf8.RuneCount(n.text):
			return fmt.Errorf("leaf chars %d, text %q has %d", n.chars, n.text, utf8.RuneCount(n.text))
		case cap(n.text) != leafMax || n.bytes > leafMax:
			return fmt.Errorf("leaf of %d bytes, capacity %d", n.bytes, cap(n.text))
		case n.bytes == 0:
			return errors.New("empty leaf")
		case !root && n.bytes < leafMin:
			return fmt.Errorf("leaf of %d bytes, under %d", n.bytes, leafMin)
		}
		return nil
	}
	if height == 0 {
		return errors.New("inner node at the leaf level")
	}
	lo := nodeMin
	if root {
		lo = 2
	}
	if len(n.kids) < lo || len(n.kids) > nodeMax {
		return fmt.Errorf("inner node at height %d with %d children, want [%d, %d]", height, len(n.kids), lo, nodeMax)
	}
	chars, bytes := 0, 0
	for _, k := range n.kids {
		if err := k.check(height-1, false); err != nil {
			return err
		}
		chars += k.chars
		bytes += k.bytes
	}
	if chars != n.chars || bytes != n.bytes {
		return fmt.Errorf("inner node counts %d chars %d bytes, children sum to %d, %d", n.chars, n.bytes, chars, bytes)
	}
	return nil
}
