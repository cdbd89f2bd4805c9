package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// Op-log values are binary, because every history read (opening a
// document, transforming an op over the ops since its base, ContentAt)
// decodes them and JSON decoding cost several times more than the rest of
// the read. The version is not in the value: it is the key's.
//
//	opFormat1          1 byte
//	uid, user, client  each uvarint length, then the bytes
//	time               1 byte: 0 for the zero time, else 1 then varint Unix nanoseconds (UTC)
//	components         uvarint count, then each: uvarint n<<2|kind
//	                   (kind 0 retain, 1 delete, 2 insert; n in code
//	                   points), and for an insert uvarint length and the
//	                   UTF-8 bytes
//
// A value starting with '{' is a JSON doc.OpRecord, which decodeOp also
// reads.
const opFormat1 = 1

// Component kinds in the op-log encoding.
const (
	kindRetain = 0
	kindDelete = 1
	kindInsert = 2
)

// errShortValue: an op-log value ends early.
var errShortValue = errors.New("value ends early")

// encodeOpValue returns the stored form of rec (its Version is the key's).
func encodeOpValue(rec doc.OpRecord) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(rec.UID) + len(rec.User) + len(rec.ClientID) + 1 + binary.MaxVarintLen64 + binary.MaxVarintLen64
	for _, c := range rec.Op {
		n += 2 * binary.MaxVarintLen64
		n += len(c.Text())
	}
	b := make([]byte, 0, n)
	b = append(b, opFormat1)
	for _, s := range []string{rec.UID, rec.User, rec.ClientID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	if rec.Time.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, rec.Time.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(rec.Op)))
	for _, c := range rec.Op {
		switch {
		case c.IsInsert():
			b = binary.AppendUvarint(b, uint64(c.Len())<<2|kindInsert)
			b = binary.AppendUvarint(b, uint64(len(c.Text())))
			b = append(b, c.Text()...)
		case c.IsDelete():
			b = binary.AppendUvarint(b, uint64(c.Len())<<2|kindDelete)
		default:
			b = binary.AppendUvarint(b, uint64(c.Len())<<2|kindRetain)
		}
	}
	return b
}

// decodeOpValue decodes a stored op of version ver. It never panics on a
// damaged value; it returns an ErrCorrupt error.
func decodeOpValue(ver int, v []byte) (doc.OpRecord, error) {
	rec, err := decodeBinaryOp(v)
	if err != nil {
		return rec, corrupt(fmt.Sprintf("op v%d", ver), err)
	}
	rec.Version = ver
	return rec, nil
}

// opValueUID returns the uid of a stored op value, decoding nothing else.
func opValueUID(v []byte) (string, error) {
	if len(v) == 0 || v[0] != opFormat1 {
		return "", fmt.Errorf("unknown format %x", v[:min(len(v), 1)])
	}
	r := opReader{b: v[1:]}
	uid := r.str()
	return uid, r.err
}

// decodeBinaryOp decodes the opFormat1 encoding.
func decodeBinaryOp(v []byte) (doc.OpRecord, error) {
	var rec doc.OpRecord
	if len(v) == 0 || v[0] != opFormat1 {
		return rec, fmt.Errorf("unknown format %x", v[:min(len(v), 1)])
	}
	r := opReader{b: v[1:]}
	rec.UID, rec.User, rec.ClientID = r.str(), r.str(), r.str()
	if r.byte() == 1 {
		rec.Time = time.Unix(0, r.varint()).UTC()
	}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) { // each component takes a byte at least
		r.err = fmt.Errorf("%d components in %d bytes", n, len(r.b))
	}
	if r.err != nil {
		return rec, r.err
	}
	rec.Op = make(ot.Op, 0, n)
	for range n {
		h := r.uvarint()
		size := h >> 2
		if r.err == nil && (size == 0 || size > ot.MaxComponentLen) {
			r.err = fmt.Errorf("component length %d", size)
		}
		if r.err != nil {
			return rec, r.err
		}
		switch h & 3 {
		case kindRetain:
			rec.Op = append(rec.Op, ot.Retain(int(size)))
		case kindDelete:
			rec.Op = append(rec.Op, ot.Delete(int(size)))
		case kindInsert:
			s := r.str()
			if r.err == nil && (!utf8.ValidString(s) || uint64(utf8.RuneCountInString(s)) != size) {
				r.err = fmt.Errorf("insert of %d code points holds %q", size, s)
			}
			if r.err != nil {
				return rec, r.err
			}
			rec.Op = append(rec.Op, ot.Insert(s))
		default:
			return rec, fmt.Errorf("component kind %d", h&3)
		}
	}
	if len(r.b) != 0 {
		return rec, fmt.Errorf("%d bytes after the op", len(r.b))
	}
	return rec, nil
}

// opReader reads an op-log value, keeping the first error.
type opReader struct {
	b   []byte
	err error
}

func (r *opReader) fail() {
	if r.err == nil {
		r.err = errShortValue
	}
	r.b = nil
}

func (r *opReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *opReader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 { // one byte: most of a block's columns
		v := r.b[0]
		r.b = r.b[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
