package ot

import (
	"testing"
	"unicode/utf8"
)

// The fast decoder must agree with encoding/json on everything it accepts,
// and leave everything else to it.

func TestDecodeFastAgrees(t *testing.T) {
	for _, s := range []string{
		`[]`, ` [ ] `, `[5,"hi",-3]`, `[1,"a",-1,"b"]`, `["😀漢"]`, `[2147483647]`, `[-2147483647]`,
		"[\n\t1 ,\r\"x\"\n]\n", `[3]`, `[1,1]`,
	} {
		fast, ok := decodeFast([]byte(s))
		if !ok {
			t.Errorf("decodeFast(%s) gave up", s)
			continue
		}
		slow, err := decodeSlow([]byte(s))
		if err != nil || !slow.Equal(fast) {
			t.Errorf("decodeFast(%s) = %v, decodeSlow = %v, %v", s, fast, slow, err)
		}
	}
	for _, s := range []string{
		`[0]`, `[01]`, `[1.0]`, `[1e3]`, `["a\"b"]`, `["\u00e9"]`, `[""]`, `[true]`, `[1,]`, `[1`, `[1] x`,
		`[2147483648]`, `[99999999999]`, `{}`, `[-]`, `[- 1]`, "[\"a\x01\"]",
	} {
		if op, ok := decodeFast([]byte(s)); ok {
			t.Errorf("decodeFast(%q) = %v, want it to leave the input to decodeSlow", s, op)
		}
	}
}

func FuzzDecodeFastAgrees(f *testing.F) {
	for _, s := range []string{`[5,"hi",-3]`, `[0]`, `["a\"b"]`, `[1.5]`, ` [ 1 , 2 ] `, `[-01]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		fast, ok := decodeFast(data)
		if !ok {
			return
		}
		slow, err := decodeSlow(data)
		if err != nil || !slow.Equal(fast) {
			t.Fatalf("decodeFast(%q) = %v, decodeSlow = %v, %v", data, fast, slow, err)
		}
	})
}
