package client

import (
	"bytes"

	"github.com/tandemhq/tandem/internal/jsonscan"
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
			s, m, good := jsonscan.String(line[i:], 0)
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
			v, m, good := jsonscan.Int(line[i:], 0)
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
			m, good := jsonscan.FlatArrayEnd(line[i:], 0)
			if !good {
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
