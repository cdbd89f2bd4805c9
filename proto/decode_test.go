package proto

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tandemhq/tandem/ot"
)

// decodeCases are frames of both kinds: the shapes the fast path takes
// and those it leaves to json.Unmarshal, valid or not.
var decodeCases = []struct {
	frame string
	fast  bool // decoded without json.Unmarshal
}{
	{`{"id":7,"type":"op","doc":"notes","version":12,"op":[3,"ab",-2],"uid":"u-1"}`, true},
	{` { "type" : "ping" , "id" : -3 } `, true},
	{`{"type":"op","op":[]}`, true},
	{`{"type":"op","op":[ 5 , "x" ]}`, true},
	{`{}`, true},
	{`{"type":"héllo ☃"}`, true},
	{`{"id":0,"version":0}`, true},
	{`{"version":9223372036854775807}`, true},
	// Left to json.Unmarshal, which decodes them.
	{`{"type":"op","doc":"a\"b"}`, false},         // an escape
	{`{"Type":"ping"}`, false},                    // a key spelled otherwise
	{`{"type":"ping","type":"op"}`, false},        // a repeated key
	{`{"type":"subscribe","channel":"c"}`, false}, // another key
	{`{"id":null,"type":"ping"}`, false},          // null
	{`{"type":"op","op":[1,"a\u00e9"]}`, false},   // an escape in the op
	{`{"type":"op","op":[[1]]}`, false},           // not flat
	{"{\"type\":\"a\xffb\"}", false},              // invalid UTF-8
	// Left to json.Unmarshal, which refuses them.
	{`{"id":1.5,"type":"ping"}`, false},
	{`{"id":1e3,"type":"ping"}`, false},
	{`{"id":01,"type":"ping"}`, false},
	{`{"id":99999999999999999999,"type":"ping"}`, false},
	{`{"type":"op","op":[0]}`, false},
	{`{"type":"op","op":[1,""]}`, false},
	{`{"type":"op","op":{}}`, false},
	{`{"type":"op","op":[1,]}`, false},
	{`{"type":"ping"} x`, false},
	{`{"type":"ping",}`, false},
	{`{"type":"ping"`, false},
	{`{"type":1}`, false},
	{`[]`, false},
	{``, false},
	{`{"type":"a` + "\x01" + `"}`, false},
}

// TestDecodeRequest: each frame decodes to what json.Unmarshal makes of it,
// with the same error, and the common shapes take the fast path.
func TestDecodeRequest(t *testing.T) {
	for _, tc := range decodeCases {
		var fast Request
		if got := decodeRequestFast([]byte(tc.frame), &fast); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.frame, got, tc.fast)
		}
		checkDecode(t, []byte(tc.frame))
	}
}

// TestDecodeRequestValues: the fast path's values, field by field.
func TestDecodeRequestValues(t *testing.T) {
	var req Request
	req.Channel = "left over" // DecodeRequest starts from a zero Request
	err := DecodeRequest([]byte(`{"id":7,"type":"op","doc":"notes","version":12,"op":[3,"ab",-2],"uid":"u-1"}`), &req)
	if err != nil {
		t.Fatal(err)
	}
	op, err := ot.Decode([]byte(`[3,"ab",-2]`))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{ID: ptr[int64](7), Type: "op", Doc: "notes", Version: ptr(12), Op: op, UID: "u-1"}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("decoded %+v, want %+v", req, want)
	}
}

func ptr[T any](v T) *T { return &v }

// checkDecode fails t unless DecodeRequest and json.Unmarshal agree on
// data: the same Request, or the same error.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	var got, want Request
	gotErr := DecodeRequest(data, &got)
	wantErr := json.Unmarshal(data, &want)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%q: DecodeRequest error %v, json.Unmarshal error %v", data, gotErr, wantErr)
	case gotErr != nil && gotErr.Error() != wantErr.Error():
		t.Fatalf("%q: DecodeRequest error %q, json.Unmarshal error %q", data, gotErr, wantErr)
	case gotErr == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("%q: DecodeRequest made %+v, json.Unmarshal %+v", data, got, want)
	}
}

// FuzzDecodeRequest: DecodeRequest and json.Unmarshal agree on every
// input.
func FuzzDecodeRequest(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.frame))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// BenchmarkDecodeRequest decodes an op frame, against json.Unmarshal.
func BenchmarkDecodeRequest(b *testing.B) {
	frame := []byte(`{"id":4711,"type":"op","doc":"bench","version":120345,"op":[5301,"k"],"uid":"c1a2b3c4d5e6f7a8-4711"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req Request
			if err := DecodeRequest(frame, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req Request
			if err := json.Unmarshal(frame, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
