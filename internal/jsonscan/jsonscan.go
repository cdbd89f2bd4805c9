// Package jsonscan reads the plain JSON values that the reflection-free
// frame decoders take (proto.DecodeRequest on the server, the client's
// decodeFast): strings without escapes, integers, flat arrays of both.
// Each function reads a value at data[i] and reports false on anything
// else, valid JSON or not, so that its caller leaves that input to
// encoding/json and the two agree on every input.
package jsonscan

import (
	"strconv"
	"unicode/utf8"
)

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func SkipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// String reads a string without escapes or control characters whose
// content is valid UTF-8 (encoding/json replaces invalid bytes) and
// returns it and the index after it.
func String(data []byte, i int) (string, int, bool) {
	j, ok := StringEnd(data, i)
	if !ok {
		return "", 0, false
	}
	return string(data[i+1 : j-1]), j, true
}

// StringEnd returns the index after the string String reads.
func StringEnd(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	j := i + 1
	for j < len(data) && data[j] != '"' && data[j] != '\\' && data[j] >= 0x20 {
		j++
	}
	if j >= len(data) || data[j] != '"' || !utf8.Valid(data[i+1:j]) {
		return 0, false
	}
	return j + 1, true
}

// intEnd returns the index after an integer (no fraction or exponent).
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

// Int reads an integer that fits an int64 and returns it and the index
// after it.
func Int(data []byte, i int) (int64, int, bool) {
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

// FlatArrayEnd returns the index after an array of integers and strings
// without escapes (the shape of an op).
func FlatArrayEnd(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '[' {
		return 0, false
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i < len(data) && data[i] == '"' {
			i, ok = StringEnd(data, i)
		} else {
			i, ok = intEnd(data, i)
		}
		if !ok {
			return 0, false
		}
		i = SkipSpace(data, i)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = SkipSpace(data, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}
