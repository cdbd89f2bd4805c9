package ot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// A DecodeError says why a JSON value is not a valid operation. Err is one of
// the package's sentinel errors; Index is the offending component, or -1 when
// the value as a whole is at fault.
type DecodeError struct {
	Index int
	Err   error
}

func (e *DecodeError) Error() string {
	if e.Index < 0 {
		return "decode op: " + e.Err.Error()
	}
	return fmt.Sprintf("decode op: component %d: %v", e.Index, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// MarshalJSON encodes the op as a JSON array: `[5,"hi",-3]`.
func (o Op) MarshalJSON() ([]byte, error) {
	return o.AppendJSON(make([]byte, 0, 8+8*len(o))), nil
}

// AppendJSON appends the op's JSON form to buf and returns the extended
// buffer, for encoders that build a frame without intermediate allocations.
func (o Op) AppendJSON(buf []byte) []byte {
	buf = append(buf, '[')
	for i, c := range o {
		if i > 0 {
			buf = append(buf, ',')
		}
		if c.s != "" {
			buf = appendQuoted(buf, c.s)
		} else {
			buf = strconv.AppendInt(buf, int64(c.n), 10)
		}
	}
	return append(buf, ']')
}

// UnmarshalJSON decodes an op from a JSON array of integers and strings and
// brings it into canonical form. It rejects, with a [*DecodeError], a value
// that is not an array, a zero, a number that is not an integer or is larger
// than MaxComponentLen, an empty string, any other JSON type, and invalid
// UTF-8. A lone UTF-16 surrogate escape such as "\ud800" decodes to U+FFFD,
// as everywhere in encoding/json. On error o is left unchanged.
func (o *Op) UnmarshalJSON(data []byte) error {
	op, err := Decode(data)
	if err != nil {
		return err
	}
	*o = op
	return nil
}

// Decode parses the JSON form of an op and returns it in canonical form. See
// [Op.UnmarshalJSON] for what it rejects. A trailing retain is dropped by
// canonicalisation and therefore not checked against any text's length.
func Decode(data []byte) (Op, error) {
	if !utf8.Valid(data) {
		return nil, &DecodeError{Index: -1, Err: ErrInvalidUTF8}
	}
	if op, ok := decodeFast(data); ok {
		return op, nil
	}
	return decodeSlow(data)
}

// decodeFast decodes the common shape of an op, an array of plain integers
// and strings without escapes, without reflection. It gives up (ok false)
// on anything else, valid or not (escapes, floats, other types, zeros,
// malformed JSON), and decodeSlow then decides, so that both agree on
// every input. data is valid UTF-8.
func decodeFast(data []byte) (op Op, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	var b Builder
	b.ops = make(Op, 0, 4)
	if i < len(data) && data[i] == ']' {
		return b.Op(), skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) {
			return nil, false
		}
		switch c := data[i]; {
		case c == '"':
			j := i + 1
			for j < len(data) && data[j] != '"' && data[j] != '\\' && data[j] >= 0x20 {
				j++
			}
			if j >= len(data) || data[j] != '"' || j == i+1 {
				return nil, false // an escape, a control character, unterminated or empty
			}
			b.add(Insert(string(data[i+1 : j])))
			i = j + 1
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			if c == '-' {
				j++
			}
			start := j
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				j++
			}
			digits := j - start
			if digits == 0 || digits > 10 || data[start] == '0' {
				return nil, false // no digits, too long, zero or a leading zero
			}
			if j < len(data) && (data[j] == '.' || data[j] == 'e' || data[j] == 'E') {
				return nil, false
			}
			n, err := strconv.ParseInt(string(data[i:j]), 10, 64)
			if err != nil || n > MaxComponentLen || n < -MaxComponentLen {
				return nil, false
			}
			b.add(Component{n: int(n)})
			i = j
		default:
			return nil, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return b.Op(), skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// decodeSlow decodes through encoding/json and reports exactly what is
// wrong with a bad op.
func decodeSlow(data []byte) (Op, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, &DecodeError{Index: -1, Err: ErrNotArray}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, &DecodeError{Index: -1, Err: fmt.Errorf("%w: %v", ErrNotArray, err)}
	}
	if dec.More() {
		return nil, &DecodeError{Index: -1, Err: fmt.Errorf("%w: trailing data", ErrNotArray)}
	}
	var b Builder
	b.ops = make(Op, 0, len(raw))
	for i, v := range raw {
		switch v := v.(type) {
		case json.Number:
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return nil, &DecodeError{Index: i, Err: ErrBadComponent}
			}
			switch {
			case n == 0:
				return nil, &DecodeError{Index: i, Err: ErrZeroLength}
			case n > MaxComponentLen || n < -MaxComponentLen:
				return nil, &DecodeError{Index: i, Err: ErrTooLarge}
			}
			b.add(Component{n: int(n)})
		case string:
			if v == "" {
				return nil, &DecodeError{Index: i, Err: ErrZeroLength}
			}
			b.add(Insert(v))
		default:
			return nil, &DecodeError{Index: i, Err: ErrBadComponent}
		}
	}
	return b.Op(), nil
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. It escapes what JSON requires
// (quote, backslash, control characters) and U+2028/U+2029, which some
// JavaScript parsers take for line ends; everything else is copied as is.
func appendQuoted(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		if r == utf8.RuneError && size == 1 {
			// Invalid UTF-8 never reaches here from a valid op; encode the
			// replacement character rather than emit invalid JSON.
			buf = append(buf, s[start:i]...)
			buf = append(buf, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
