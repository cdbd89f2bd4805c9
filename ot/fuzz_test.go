package ot_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// FuzzDecode checks that decoding never panics, that whatever it accepts is
// canonical, and that encoding and decoding again gives the same op.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`[]`, `[5,"hi",-3]`, `[2,-1,"x"]`, `[0]`, `[1.5]`, `["😀",-1]`, `null`, `{"a":1}`, `["\ud800"]`, "[\"\xff\"]", `[1,1,1,"a",-1,"b"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := ot.Decode(data)
		if err != nil {
			return
		}
		mustCanonical(t, "Decode", op)
		enc, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ot.Decode(enc)
		if err != nil || !back.Equal(op) {
			t.Fatalf("%q decoded to %v, encoded as %s, decoded again to %v, %v", data, op, enc, back, err)
		}
		if !json.Valid(enc) {
			t.Fatalf("invalid JSON %q", enc)
		}
	})
}

// FuzzTransformConverges checks every law (TP1 both ways, compose, invert,
// cursor bounds, JSON round trip) on random ops over the fuzzed text.
func FuzzTransformConverges(f *testing.F) {
	f.Add(uint64(1), "héllo wörld")
	f.Add(uint64(2), "")
	f.Add(uint64(3), "😀漢字e\u0301\n")
	f.Fuzz(func(t *testing.T, seed uint64, text string) {
		if !utf8.ValidString(text) || len(text) > 512 {
			return // documents are text; keep cases small
		}
		checkLaws(t, seed, text)
	})
}

// FuzzSimulation runs the server-and-clients simulation on fuzzed schedules.
func FuzzSimulation(f *testing.F) {
	f.Add(uint64(7), uint8(3))
	f.Add(uint64(42), uint8(5))
	f.Fuzz(func(t *testing.T, seed uint64, clients uint8) {
		simulate(t, seed, 2+int(clients%5), 200)
	})
}
