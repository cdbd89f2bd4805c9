package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// Blocks: a run of a document's ops packed into one value (pack.go says
// when). Every field of every op is kept (version, op, uid, user, client,
// time to the nanosecond), so a block decodes to exactly the records that
// went in. The value is
//
//	blockFormat1       1 byte
//	n                  uvarint: the number of ops; the first one's version
//	                   is the key's, the others follow without a gap
//	raw                uvarint: the length of the body below
//	body               one zstd frame, with its content checksum
//
// and the body is a few tables and then one column per field, each column
// the values of all n ops (or of all their components) one after another,
// so that like lies beside like for the compressor:
//
//	authors     uvarint k, then k × (user, client): the distinct pairs
//	uids        uvarint m, then m × (kind byte, string): kind 0 is a uid
//	            prefix followed by a decimal counter (splitUID), kind 1 a
//	            whole uid that does not end in one
//	then nine columns, each as uvarint byte length and bytes:
//	author      n × uvarint index into authors
//	uid         n × uvarint: 0 no uid, else 1 + index into uids
//	counter     for each op with a kind-0 uid: uvarint zigzag(counter −
//	            the previous counter of the same prefix in this block, or 0)
//	timed       n × 1 byte: 0 for the zero time, else 1
//	time        for each timed op: uvarint zigzag(Unix nanoseconds − the
//	            previous timed op's, or 0)
//	ncomp       n × uvarint: the op's number of components
//	kind        1 byte per component: 0 retain, 1 delete, 2 insert
//	length      per component: for a retain uvarint zigzag(n − the length
//	            of the latest retain at the same position in an earlier op
//	            of the block, or 0); for a delete or an insert uvarint n
//	            (in code points)
//	text        the inserts' UTF-8, concatenated (an insert of n code
//	            points takes the next n)
//
// Strings are uvarint length and bytes. Typing makes most columns runs of
// the same small numbers (the retain before the cursor grows by one, the
// one after it stays, each author's counter steps by one), which zstd
// squeezes to a fraction of a byte per op.
const blockFormat1 = 1

// Block limits. maxBlockOps bounds n; maxBlockRaw bounds the body a decoder
// accepts (a packer cuts blocks near blockRawTarget, plus one op).
const (
	maxBlockOps    = 1 << 16
	blockRawTarget = 1 << 20
	maxBlockRaw    = 1 << 28
)

// uid kinds in a block's uid table and the block uid index (pack.go).
const (
	uidCounter = 0 // a prefix followed by a decimal counter
	uidLiteral = 1 // a whole uid
)

// splitUID splits uid into a prefix and a decimal counter, so that prefix +
// strconv.FormatUint(counter, 10) == uid: clients make uids as
// `<client_id>-<counter>`. ok is false when uid does not end in digits, or
// in too many of them.
func splitUID(uid string) (prefix string, counter uint64, ok bool) {
	i := len(uid)
	for i > 0 && uid[i-1] >= '0' && uid[i-1] <= '9' {
		i--
	}
	for i < len(uid)-1 && uid[i] == '0' {
		i++ // leading zeros belong to the prefix; a lone 0 is the counter
	}
	if i == len(uid) || len(uid)-i > 18 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(uid[i:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return uid[:i], n, true
}

// uidSpan is what a block holds of one uid kind and key (a prefix, or a
// whole literal uid): for a prefix, the smallest and largest counter. The
// block uid index (pack.go) keeps one per block.
type uidSpan struct {
	kind     byte
	key      string
	min, max uint64
}

// zstd coders. Both are safe for concurrent use; they are made on first use
// and live as long as the process. The encoder's default level: on the
// automerge-paper trace the best level packs blocks 1.5% smaller at twice
// the time and thirty times the memory (43 MB held).
var (
	zEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(2), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(true))
		if err != nil {
			panic(err) // only for bad options
		}
		return e
	})
	zDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(maxBlockRaw))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// zstdMagic starts every zstd frame. It is not valid UTF-8 (0xB5 is a
// continuation byte after an ASCII one), so a value starting with it can
// never be plain text.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// decompress decodes a zstd frame of exactly raw bytes.
func decompress(frame []byte, raw int) ([]byte, error) {
	if raw < 0 || raw > maxBlockRaw {
		return nil, fmt.Errorf("body of %d bytes", raw)
	}
	out, err := zDecoder().DecodeAll(frame, make([]byte, 0, raw))
	if err != nil {
		return nil, err
	}
	if len(out) != raw {
		return nil, fmt.Errorf("body of %d bytes, header says %d", len(out), raw)
	}
	return out, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// encodeBlock packs recs, which hold consecutive versions, into a block
// value, and returns the block's uid spans in the order of their first op.
func encodeBlock(recs []doc.OpRecord) ([]byte, []uidSpan) {
	type author struct{ user, client string }
	authors := map[author]int{}
	var authorList []author
	type uidKey struct {
		kind byte
		key  string
	}
	uidIdx := map[uidKey]int{}
	var spans []uidSpan
	lastCounter := map[int]uint64{}

	var cAuthor, cUID, cCounter, cTimed, cTime, cNComp, cKind, cLen, cText []byte
	var prevTime int64
	var prevRetain []int
	for _, rec := range recs {
		a := author{rec.User, rec.ClientID}
		ai, ok := authors[a]
		if !ok {
			ai = len(authorList)
			authors[a] = ai
			authorList = append(authorList, a)
		}
		cAuthor = binary.AppendUvarint(cAuthor, uint64(ai))

		if rec.UID == "" {
			cUID = append(cUID, 0)
		} else {
			k := uidKey{kind: uidLiteral, key: rec.UID}
			prefix, counter, isCounter := splitUID(rec.UID)
			if isCounter {
				k = uidKey{kind: uidCounter, key: prefix}
			}
			ui, ok := uidIdx[k]
			if !ok {
				ui = len(spans)
				uidIdx[k] = ui
				spans = append(spans, uidSpan{kind: k.kind, key: k.key, min: counter, max: counter})
			}
			cUID = binary.AppendUvarint(cUID, uint64(ui)+1)
			if isCounter {
				cCounter = binary.AppendUvarint(cCounter, zigzag(int64(counter-lastCounter[ui])))
				lastCounter[ui] = counter
				s := &spans[ui]
				s.min, s.max = min(s.min, counter), max(s.max, counter)
			}
		}

		if rec.Time.IsZero() {
			cTimed = append(cTimed, 0)
		} else {
			cTimed = append(cTimed, 1)
			t := rec.Time.UnixNano()
			cTime = binary.AppendUvarint(cTime, zigzag(t-prevTime))
			prevTime = t
		}

		cNComp = binary.AppendUvarint(cNComp, uint64(len(rec.Op)))
		for j, c := range rec.Op {
			switch {
			case c.IsInsert():
				cKind = append(cKind, kindInsert)
				cLen = binary.AppendUvarint(cLen, uint64(c.Len()))
				cText = append(cText, c.Text()...)
			case c.IsDelete():
				cKind = append(cKind, kindDelete)
				cLen = binary.AppendUvarint(cLen, uint64(c.Len()))
			default:
				for len(prevRetain) <= j {
					prevRetain = append(prevRetain, 0)
				}
				cKind = append(cKind, kindRetain)
				cLen = binary.AppendUvarint(cLen, zigzag(int64(c.Len()-prevRetain[j])))
				prevRetain[j] = c.Len()
			}
		}
	}

	body := binary.AppendUvarint(nil, uint64(len(authorList)))
	for _, a := range authorList {
		body = appendStr(body, a.user)
		body = appendStr(body, a.client)
	}
	body = binary.AppendUvarint(body, uint64(len(spans)))
	for _, s := range spans {
		body = append(body, s.kind)
		body = appendStr(body, s.key)
	}
	for _, col := range [][]byte{cAuthor, cUID, cCounter, cTimed, cTime, cNComp, cKind, cLen, cText} {
		body = binary.AppendUvarint(body, uint64(len(col)))
		body = append(body, col...)
	}

	val := []byte{blockFormat1}
	val = binary.AppendUvarint(val, uint64(len(recs)))
	val = binary.AppendUvarint(val, uint64(len(body)))
	val = zEncoder().EncodeAll(body, val)
	return val, spans
}

// blockHeader reads a block value's header: its number of ops, the length
// of its body and the compressed frame.
func blockHeader(v []byte) (n, raw int, frame []byte, err error) {
	if len(v) == 0 || v[0] != blockFormat1 {
		return 0, 0, nil, fmt.Errorf("unknown block format %x", v[:min(len(v), 1)])
	}
	r := opReader{b: v[1:]}
	un, uraw := r.uvarint(), r.uvarint()
	switch {
	case r.err != nil:
		return 0, 0, nil, r.err
	case un == 0 || un > maxBlockOps:
		return 0, 0, nil, fmt.Errorf("block of %d ops", un)
	case uraw > maxBlockRaw:
		return 0, 0, nil, fmt.Errorf("block body of %d bytes", uraw)
	}
	return int(un), int(uraw), r.b, nil
}

// blockLen returns the number of ops of a block value, reading only its
// header.
func blockLen(v []byte) (int, error) {
	n, _, _, err := blockHeader(v)
	return n, err
}

// errBlockUID: blockBody.findUID met a damaged column.
var errBlockUID = errors.New("damaged uid column")

// blockBody is a decompressed block split into its tables and columns.
type blockBody struct {
	n       int
	users   []string // by author index
	clients []string
	spans   []uidSpan // kind and key of each uid table entry (min, max unset)
	cols    [9][]byte // author, uid, counter, timed, time, ncomp, kind, length, text
}

// Column indexes in blockBody.cols.
const (
	colAuthor = iota
	colUID
	colCounter
	colTimed
	colTime
	colNComp
	colKind
	colLen
	colText
)

// openBlock decompresses a block value and splits its body. It never panics
// on damaged input.
func openBlock(v []byte) (*blockBody, error) {
	n, raw, frame, err := blockHeader(v)
	if err != nil {
		return nil, err
	}
	body, err := decompress(frame, raw)
	if err != nil {
		return nil, err
	}
	b := &blockBody{n: n}
	r := opReader{b: body}
	k := r.uvarint()
	if r.err == nil && k > uint64(len(r.b)) {
		return nil, fmt.Errorf("%d authors in %d bytes", k, len(r.b))
	}
	for range k {
		b.users = append(b.users, r.str())
		b.clients = append(b.clients, r.str())
	}
	m := r.uvarint()
	if r.err == nil && m > uint64(len(r.b)) {
		return nil, fmt.Errorf("%d uid entries in %d bytes", m, len(r.b))
	}
	for range m {
		kind := r.byte()
		key := r.str()
		if r.err == nil && kind != uidCounter && kind != uidLiteral {
			return nil, fmt.Errorf("uid kind %d", kind)
		}
		b.spans = append(b.spans, uidSpan{kind: kind, key: key})
	}
	for i := range b.cols {
		l := r.uvarint()
		if r.err == nil && l > uint64(len(r.b)) {
			r.fail()
		}
		if r.err != nil {
			return nil, r.err
		}
		b.cols[i], r.b = r.b[:l:l], r.b[l:]
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the columns", len(r.b))
	}
	return b, nil
}

// uidText decodes the uid columns into one string holding every op's uid
// one after another: op i's is all[ends[i]:ends[i+1]] ("" for none), so
// that a block's uids cost one allocation.
func (b *blockBody) uidText() (all string, ends []int32, err error) {
	ru, rc := opReader{b: b.cols[colUID]}, opReader{b: b.cols[colCounter]}
	last := make([]uint64, len(b.spans))
	buf := make([]byte, 0, b.n*16)
	ends = make([]int32, b.n+1)
	for i := range b.n {
		ends[i] = int32(len(buf))
		u := ru.uvarint()
		if u == 0 {
			continue
		}
		if u > uint64(len(b.spans)) {
			return "", nil, errBlockUID
		}
		sp := &b.spans[u-1]
		buf = append(buf, sp.key...)
		if sp.kind == uidCounter {
			c := last[u-1] + uint64(unzigzag(rc.uvarint()))
			last[u-1] = c
			buf = strconv.AppendUint(buf, c, 10)
		}
		if len(buf) > maxBlockRaw {
			return "", nil, errBlockUID
		}
	}
	ends[b.n] = int32(len(buf))
	if ru.err != nil || rc.err != nil || len(ru.b) != 0 || len(rc.b) != 0 {
		return "", nil, errBlockUID
	}
	return string(buf), ends, nil
}

// uids decodes the uid columns: the uid of every op ("" for none).
func (b *blockBody) uids() ([]string, error) {
	all, ends, err := b.uidText()
	if err != nil {
		return nil, err
	}
	out := make([]string, b.n)
	for i := range out {
		out[i] = all[ends[i]:ends[i+1]]
	}
	return out, nil
}

// findUID returns the index in the block of the op with uid, if any.
func (b *blockBody) findUID(uid string) (int, bool, error) {
	all, ends, err := b.uidText()
	if err != nil {
		return 0, false, err
	}
	for i := range b.n {
		if all[ends[i]:ends[i+1]] == uid {
			return i, true, nil
		}
	}
	return 0, false, nil
}

// records decodes the ops with indexes [lo, hi) of the block whose first
// version is first. Every column is walked from the start, as they are
// delta-coded, but only the records asked for are built.
func (b *blockBody) records(first, lo, hi int) ([]doc.OpRecord, error) {
	return b.appendRecords(make([]doc.OpRecord, 0, hi-lo), first, lo, hi)
}

// appendRecords is records appending to out, so that a long read builds
// its records in place. Readers keep their first error and return zeros
// after it, which every use below bounds; their errors are checked once,
// at the end.
func (b *blockBody) appendRecords(out []doc.OpRecord, first, lo, hi int) ([]doc.OpRecord, error) {
	uidAll, uidEnds, err := b.uidText()
	if err != nil {
		return nil, err
	}
	ra := opReader{b: b.cols[colAuthor]}
	rtd := opReader{b: b.cols[colTimed]}
	rt := opReader{b: b.cols[colTime]}
	rn := opReader{b: b.cols[colNComp]}
	rk := opReader{b: b.cols[colKind]}
	rl := opReader{b: b.cols[colLen]}
	text := string(b.cols[colText]) // one string; inserts are substrings of it
	pos := 0
	var prevTime int64
	var prevRetain []int
	var slab []ot.Component // components of the records built, allocated a few hundred at a time
	for i := range b.n {
		a := ra.uvarint()
		if a >= uint64(len(b.users)) {
			return nil, fmt.Errorf("op %d: author %d of %d", i, a, len(b.users))
		}
		var t time.Time
		if rtd.byte() == 1 {
			prevTime += unzigzag(rt.uvarint())
			t = time.Unix(0, prevTime).UTC()
		}
		nc := rn.uvarint()
		if nc > uint64(len(rk.b)) {
			return nil, fmt.Errorf("op %d: %d components, %d kinds left", i, nc, len(rk.b))
		}
		want := i >= lo && i < hi
		var op ot.Op
		if want {
			if len(slab) < int(nc) {
				slab = make([]ot.Component, max(int(nc), 256))
			}
			op, slab = slab[:0:nc], slab[nc:]
		}
		for j := range int(nc) {
			kind := rk.byte()
			l := rl.uvarint()
			var size int64
			switch kind {
			case kindRetain:
				for len(prevRetain) <= j {
					prevRetain = append(prevRetain, 0)
				}
				size = int64(prevRetain[j]) + unzigzag(l)
				if size > 0 && size <= ot.MaxComponentLen {
					prevRetain[j] = int(size)
				}
			case kindDelete, kindInsert:
				if l <= ot.MaxComponentLen {
					size = int64(l)
				}
			default:
				return nil, fmt.Errorf("op %d: component kind %d", i, kind)
			}
			if size <= 0 || size > ot.MaxComponentLen {
				return nil, fmt.Errorf("op %d: component length %d", i, size)
			}
			var s string
			if kind == kindInsert {
				start := pos
				for range size {
					if pos >= len(text) {
						return nil, fmt.Errorf("op %d: text ends early", i)
					}
					if text[pos] < utf8.RuneSelf {
						pos++
						continue
					}
					r, w := utf8.DecodeRuneInString(text[pos:])
					if r == utf8.RuneError && w == 1 {
						return nil, fmt.Errorf("op %d: invalid UTF-8", i)
					}
					pos += w
				}
				s = text[start:pos]
			}
			if !want {
				continue
			}
			switch kind {
			case kindRetain:
				op = append(op, ot.Retain(int(size)))
			case kindDelete:
				op = append(op, ot.Delete(int(size)))
			default:
				op = append(op, ot.Insert(s))
			}
		}
		if want {
			out = append(out, doc.OpRecord{Version: first + i, Op: op, UID: uidAll[uidEnds[i]:uidEnds[i+1]],
				User: b.users[a], ClientID: b.clients[a], Time: t})
		}
	}
	for _, r := range []*opReader{&ra, &rtd, &rt, &rn, &rk, &rl} {
		if r.err != nil {
			return nil, r.err
		}
		if len(r.b) != 0 {
			return nil, fmt.Errorf("a column runs past the block's %d ops", b.n)
		}
	}
	if pos != len(text) {
		return nil, fmt.Errorf("%d bytes of text past the inserts", len(text)-pos)
	}
	return out, nil
}

// decodeBlock decodes the ops [lo, hi) of a block value whose first version
// is first. It never panics on a damaged value; it returns an ErrCorrupt
// error.
func decodeBlock(first int, v []byte, lo, hi int) ([]doc.OpRecord, error) {
	return appendBlock(make([]doc.OpRecord, 0, max(hi-lo, 0)), first, v, lo, hi)
}

// appendBlock is decodeBlock appending to out.
func appendBlock(out []doc.OpRecord, first int, v []byte, lo, hi int) ([]doc.OpRecord, error) {
	b, err := openBlock(v)
	if err == nil && (lo < 0 || hi > b.n || lo > hi) {
		err = fmt.Errorf("ops [%d, %d) of a block of %d", lo, hi, b.n)
	}
	if err == nil {
		out, err = b.appendRecords(out, first, lo, hi)
	}
	if err != nil {
		return nil, corrupt(fmt.Sprintf("block v%d", first), err)
	}
	return out, nil
}

// isZstd reports whether v is a zstd frame rather than plain text.
func isZstd(v []byte) bool { return bytes.HasPrefix(v, zstdMagic) }
