package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
)

// describeJSON says what is wrong with a JSON value that did not decode,
// in the protocol's terms: which field, what it must be and what it was,
// or where the JSON breaks. It never names a Go type: encoding/json's own
// messages do ("cannot unmarshal number -1 into Go struct field
// Since.since.offset of type uint64"). what names the value: "the frame",
// "the body".
func describeJSON(what string, err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("%s must be %s, not %s", what, expectedJSON(te.Type, true), jsonValue(te.Value))
		}
		return fmt.Sprintf("%s: %s must be %s, not %s", what, field, expectedJSON(te.Type, false), jsonValue(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("%s is not valid JSON: %s (at byte %d)", what, publicMessage(se.Error()), se.Offset)
	case errors.Is(err, io.EOF):
		return what + " is empty: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return what + " is not valid JSON: it ends too soon"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return what + " did not arrive within the server's read timeout"
		}
		return what + " could not be read"
	}
	msg := publicMessage(err.Error())
	if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return fmt.Sprintf("%s has an unknown field %s", what, f)
	}
	// A field's own decoder failed (an op, a duration): its message says
	// what was wrong, in the protocol's terms.
	return fmt.Sprintf("%s: %s", what, strings.TrimPrefix(msg, "decode "))
}

// expectedJSON names, in JSON's terms, what a Go type decodes from.
func expectedJSON(t reflect.Type, top bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t.Bits() == 64 {
			return "an integer"
		}
		return fmt.Sprintf("an integer from %d to %d", int64(-1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t.Bits() == 64 {
			return "a non-negative integer"
		}
		return fmt.Sprintf("an integer from 0 to %d", uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		if top {
			return "a JSON object"
		}
		return "an object"
	}
	return "something else"
}

// jsonValue names a value as encoding/json reports it ("number -1",
// "string", "array").
func jsonValue(v string) string {
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n
	}
	switch v {
	case "array", "object":
		return "an " + v
	case "bool":
		return "true or false"
	case "":
		return "that"
	}
	return "a " + v
}

// packagePrefixes are the prefixes our packages' errors carry ("session:
// bad channel name"): a client has no use for them.
var packagePrefixes = strings.NewReplacer(
	"session: ", "", "storage: ", "", "doc: ", "", "ot: ", "", "auth: ", "", "web: ", "", "proto: ", "", "json: ", "",
)

// publicMessage is an error message as a client may see it: without the
// names of the packages that wrapped it.
func publicMessage(msg string) string { return packagePrefixes.Replace(msg) }
