package client

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// decodeFast decodes the frames every editor receives most, a remote op
// and an ack, without reflection: a flat object of plain strings (no
// escapes), integers and the op array, with only the keys those frames
// have. Anything else (ok false) goes to encoding/json, which decides.
func decodeFast(line []byte, f *inbound) (ok bool) {
	if !bytes.HasPrefix(line, []byte(`{"type":"op",`)) && !bytes.HasPrefix(line, []byte(`{"id":`)) {
		return false
	}
	i := 1
	for {
		// "key":
		if i >= len(line) || line[i] != '"' {
			return false
		}
		end := bytes.IndexByte(line[i+1:], '"')
		if end < 0 {
			return false
		}
		key := line[i+1 : i+1+end]
		i += end + 2
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i++
		// value
		var n int
		switch string(key) {
		case "type", "doc", "uid", "user", "client_id", "ts":
			s, m, good := plainString(line[i:])
			if !good {
				return false
			}
			switch string(key) {
			case "type":
				f.Type = s
			case "doc":
				f.Doc = s
			case "uid":
				f.UID = s
			case "user":
				f.User = append(append([]byte{'"'}, s...), '"') // as raw JSON: s holds nothing to escape
			case "client_id":
				f.ClientID = s
			case "ts":
				f.TS = s
			}
			n = m
		case "id", "version":
			v, m, good := plainInt(line[i:])
			if !good {
				return false
			}
			if string(key) == "id" {
				id := v
				f.ID = &id
			} else {
				f.Version = int(v)
			}
			n = m
		case "op":
			m := arrayEnd(line[i:])
			if m < 0 {
				return false
			}
			op, err := ot.Decode(line[i : i+m])
			if err != nil {
				return false
			}
			f.Op, n = op, m
		default:
			return false
		}
		i += n
		if i >= len(line) {
			return false
		}
		switch line[i] {
		case ',':
			i++
		case '}':
			return i == len(line)-1 && (f.Type == "op" || f.Type == "ack")
		default:
			return false
		}
	}
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
