package proto

import (
	"encoding/json"

	"github.com/tandemhq/tandem/internal/jsonscan"
	"github.com/tandemhq/tandem/ot"
)

// DecodeRequest decodes a client frame into req exactly as json.Unmarshal
// does, with json.Unmarshal's errors. The frames a busy server reads most,
// ops and pings, are decoded without reflection: an object whose keys are
// among id, type, doc, version, op and uid, each once and spelled so, with
// plain values (integers, strings without escapes, an op of integers and
// such strings). Anything else goes to json.Unmarshal, so the two agree
// on every input (FuzzDecodeRequest checks it).
func DecodeRequest(data []byte, req *Request) error {
	*req = Request{}
	if decodeRequestFast(data, req) {
		return nil
	}
	*req = Request{}
	return json.Unmarshal(data, req)
}

// The keys decodeRequestFast knows, as bits of a set.
const (
	keyID = 1 << iota
	keyType
	keyDoc
	keyVersion
	keyOp
	keyUID
)

// decodeRequestFast decodes the plain shapes DecodeRequest describes into
// req and reports whether data was one; on false req holds garbage.
func decodeRequestFast(data []byte, req *Request) bool {
	i := jsonscan.SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = jsonscan.SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return jsonscan.SkipSpace(data, i+1) == len(data)
	}
	seen := 0
	for {
		j, ok := jsonscan.StringEnd(data, i)
		if !ok {
			return false
		}
		key := data[i+1 : j-1]
		i = jsonscan.SkipSpace(data, j)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = jsonscan.SkipSpace(data, i+1)
		var bit int
		switch string(key) {
		case "id":
			bit = keyID
			n, j, ok := jsonscan.Int(data, i)
			if !ok {
				return false
			}
			req.ID, i = &n, j
		case "version":
			bit = keyVersion
			n, j, ok := jsonscan.Int(data, i)
			if !ok || int64(int(n)) != n {
				return false
			}
			v := int(n)
			req.Version, i = &v, j
		case "op":
			bit = keyOp
			j, ok := jsonscan.FlatArrayEnd(data, i)
			if !ok {
				return false
			}
			op, err := ot.Decode(data[i:j])
			if err != nil {
				return false // json.Unmarshal words the error
			}
			req.Op, i = op, j
		case "type":
			bit = keyType
			j, ok := jsonscan.StringEnd(data, i)
			if !ok {
				return false
			}
			req.Type, i = requestType(data[i+1:j-1]), j
		case "doc", "uid":
			s, j, ok := jsonscan.String(data, i)
			if !ok {
				return false
			}
			if key[0] == 'd' {
				bit, req.Doc = keyDoc, s
			} else {
				bit, req.UID = keyUID, s
			}
			i = j
		default:
			return false
		}
		if seen&bit != 0 {
			return false // a repeated key: the last wins in json.Unmarshal
		}
		seen |= bit
		i = jsonscan.SkipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = jsonscan.SkipSpace(data, i+1)
		case '}':
			return jsonscan.SkipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// requestType returns a frame's type, without allocating for the types
// of the frames DecodeRequest decodes itself.
func requestType(b []byte) string {
	switch string(b) {
	case TypeOp:
		return TypeOp
	case TypePing:
		return TypePing
	}
	return string(b)
}
