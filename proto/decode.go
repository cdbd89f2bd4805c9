package proto

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

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
	if !utf8.Valid(data) {
		return false // encoding/json replaces invalid bytes in strings
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	seen := 0
	for {
		j, ok := plainStringEnd(data, i)
		if !ok {
			return false
		}
		key := data[i+1 : j-1]
		i = skipSpace(data, j)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		var bit int
		switch string(key) {
		case "id":
			bit = keyID
			n, j, ok := plainInt(data, i)
			if !ok {
				return false
			}
			req.ID, i = &n, j
		case "version":
			bit = keyVersion
			n, j, ok := plainInt(data, i)
			if !ok || int64(int(n)) != n {
				return false
			}
			v := int(n)
			req.Version, i = &v, j
		case "op":
			bit = keyOp
			j, ok := flatArray(data, i)
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
			j, ok := plainStringEnd(data, i)
			if !ok {
				return false
			}
			req.Type, i = requestType(data[i+1:j-1]), j
		case "doc", "uid":
			s, j, ok := plainString(data, i)
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
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
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

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string without escapes or control characters
// at data[i], and returns it and the index after it.
func plainString(data []byte, i int) (string, int, bool) {
	j, ok := plainStringEnd(data, i)
	if !ok {
		return "", 0, false
	}
	return string(data[i+1 : j-1]), j, true
}

// plainStringEnd returns the index after the string plainString reads.
func plainStringEnd(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	j := i + 1
	for j < len(data) && data[j] != '"' && data[j] != '\\' && data[j] >= 0x20 {
		j++
	}
	if j >= len(data) || data[j] != '"' {
		return 0, false
	}
	return j + 1, true
}

// intEnd returns the index after a JSON integer (no fraction or
// exponent) at data[i].
func intEnd(data []byte, i int) (int, bool) {
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	start := j
	for j < len(data) && data[j] >= '0' && data[j] <= '9' {
		j++
	}
	switch {
	case j == start, data[start] == '0' && j > start+1:
		return 0, false // no digits, or a leading zero
	case j < len(data) && (data[j] == '.' || data[j] == 'e' || data[j] == 'E'):
		return 0, false
	}
	return j, true
}

// plainInt reads a JSON integer that fits an int64 at data[i].
func plainInt(data []byte, i int) (int64, int, bool) {
	j, ok := intEnd(data, i)
	if !ok {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(string(data[i:j]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return n, j, true
}

// flatArray returns the index after a JSON array of integers and plain
// strings at data[i], the shape of an op.
func flatArray(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '[' {
		return 0, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i < len(data) && data[i] == '"' {
			i, ok = plainStringEnd(data, i)
		} else {
			i, ok = intEnd(data, i)
		}
		if !ok {
			return 0, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}
