package client

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// decodeFast decodes the frames every editor receives most, a remote op
// (proto.DocOp) and an ack (proto.Ack), without reflection: a flat object
// of plain strings (no escapes), integers and the op array, with only keys
// of the frame's type. Anything else (ok false) goes to encoding/json,
// which decides; whatever decodeFast takes, it decodes as encoding/json
// would (FuzzDecodeFrame checks it).
func decodeFast(line []byte) (f *inbound, ok bool) {
	const (
		keyID = 1 << iota
		keyType
		keyDoc
		keyVersion
		keyOp
		keyUID
		keyUser
		keyClientID
		keyTS
		opKeys  = keyType | keyDoc | keyVersion | keyOp | keyUID | keyUser | keyClientID | keyTS
		ackKeys = keyID | keyType | keyDoc | keyVersion | keyUID
	)
	if len(line) < 2 || line[0] != '{' {
		return nil, false
	}
	var (
		seen                           int
		id                             int64
		version                        int
		op                             ot.Op
		typ, docID, uid, user, cid, ts string
	)
	i := 1
	for {
		// "key":
		if i >= len(line) || line[i] != '"' {
			return nil, false
		}
		end := bytes.IndexByte(line[i+1:], '"')
		if end < 0 {
			return nil, false
		}
		key := line[i+1 : i+1+end]
		i += end + 2
		if i >= len(line) || line[i] != ':' {
			return nil, false
		}
		i++
		// value
		var n int
		switch string(key) {
		case "type", "doc", "uid", "user", "client_id", "ts":
			s, m, good := plainString(line[i:])
			if !good {
				return nil, false
			}
			switch string(key) {
			case "type":
				typ, seen = s, seen|keyType
			case "doc":
				docID, seen = s, seen|keyDoc
			case "uid":
				uid, seen = s, seen|keyUID
			case "user":
				user, seen = s, seen|keyUser
			case "client_id":
				cid, seen = s, seen|keyClientID
			case "ts":
				ts, seen = s, seen|keyTS
			}
			n = m
		case "id", "version":
			v, m, good := plainInt(line[i:])
			if !good {
				return nil, false
			}
			if string(key) == "id" {
				id, seen = v, seen|keyID
			} else {
				if int64(int(v)) != v {
					return nil, false // encoding/json decides what overflows an int
				}
				version, seen = int(v), seen|keyVersion
			}
			n = m
		case "op":
			m := arrayEnd(line[i:])
			if m < 0 {
				return nil, false
			}
			o, err := ot.Decode(line[i : i+m])
			if err != nil {
				return nil, false
			}
			op, n, seen = o, m, seen|keyOp
		default:
			return nil, false
		}
		i += n
		if i >= len(line) {
			return nil, false
		}
		switch line[i] {
		case ',':
			i++
			continue
		case '}':
			if i != len(line)-1 {
				return nil, false
			}
		default:
			return nil, false
		}
		break
	}
	switch {
	case typ == proto.TypeOp && seen&^opKeys == 0:
		return &inbound{Type: typ, body: &proto.DocOp{Type: typ, Doc: docID, Version: version, Op: op, UID: uid, User: user, ClientID: cid, TS: ts}}, true
	case typ == proto.TypeAck && seen&^ackKeys == 0:
		a := &proto.Ack{Type: typ, Doc: docID, Version: version, UID: uid}
		if seen&keyID != 0 {
			a.ID = &id
		}
		return &inbound{Type: typ, ID: a.ID, body: a}, true
	}
	return nil, false
}

// plainString reads a JSON string without escapes at the start of b.
func plainString(b []byte) (string, int, bool) {
	if len(b) < 2 || b[0] != '"' {
		return "", 0, false
	}
	for j := 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !utf8.Valid(b[1:j]) {
				return "", 0, false // encoding/json replaces what is invalid
			}
			return string(b[1:j]), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// plainInt reads a non-negative JSON integer at the start of b.
func plainInt(b []byte) (int64, int, bool) {
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == 0 || j > 18 || (j > 1 && b[0] == '0') {
		return 0, 0, false
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return v, j, err == nil
}

// arrayEnd returns the length of the JSON array at the start of b whose
// strings hold no escapes, or -1.
func arrayEnd(b []byte) int {
	if len(b) == 0 || b[0] != '[' {
		return -1
	}
	for j := 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			k := bytes.IndexByte(b[j+1:], '"')
			if k < 0 || bytes.IndexByte(b[j+1:j+1+k], '\\') >= 0 {
				return -1
			}
			j += k + 1
		case ']':
			return j + 1
		case '[', '{':
			return -1
		}
	}
	return -1
}
