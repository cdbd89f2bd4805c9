package ot_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// The JavaScript client carries its own OT engine (web/static/tandem.js),
// which must answer exactly as this package does or clients diverge from
// the server. parityTable is the file of cases it is checked against
// (clients/js/test/ot.test.mjs): TestParityTable computes every case with
// this package and fails when the file says otherwise; with -update it
// rewrites the file.
const parityTable = "../clients/js/test/ot-table.json"

var update = flag.Bool("update", false, "rewrite "+parityTable+" from this package's answers")

// TestParityTable checks that the JS client's table of OT cases is what this
// package computes today. After a deliberate change to the engine, run
// `go test ./ot -run Parity -update` and commit the new table with it.
func TestParityTable(t *testing.T) {
	want := buildParityTable(t)
	if *update {
		if err := os.WriteFile(parityTable, want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", parityTable, len(want))
		return
	}
	got, err := os.ReadFile(parityTable)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./ot -run Parity -update)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := range min(len(gl), len(wl)) {
			if !bytes.Equal(gl[i], wl[i]) {
				t.Fatalf("%s is stale at line %d:\n file: %s\n  now: %s\nthe engine's answers changed: if that is intended, run go test ./ot -run Parity -update and check that the JS client still agrees (scripts/test-js.sh)",
					parityTable, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s is stale: %d lines, the engine gives %d; run go test ./ot -run Parity -update", parityTable, len(gl), len(wl))
	}
}

// parityCases is how many random cases each section of the table holds.
const parityCases = 300

// buildParityTable computes the whole table, deterministically: the same
// seed always gives the same cases, so the file changes only when the
// engine's answers do.
func buildParityTable(t *testing.T) []byte {
	r := rand.New(rand.NewPCG(2026, 11))
	var sections []string
	var names []string
	add := func(name string, cases []any) {
		lines := make([]string, len(cases))
		for i, c := range cases {
			lines[i] = marshalCase(t, c)
		}
		names = append(names, name)
		sections = append(sections, fmt.Sprintf("%q: [\n%s\n]", name, strings.Join(lines, ",\n")))
	}

	var transform, compose, normalize, invert, apply, index, rng, splice []any
	for range parityCases {
		text := randomText(r, 6)
		a, b := randomOp(r, text), randomOp(r, text)
		a2, b2, err := ot.Transform(a, b)
		if err != nil {
			t.Fatalf("Transform(%v, %v): %v", a, b, err)
		}
		transform = append(transform, map[string]any{"text": text, "a": a, "b": b, "a2": a2, "b2": b2})

		mid := applyOrFail(t, text, a)
		c := randomOp(r, mid)
		ac, err := ot.Compose(a, c)
		if err != nil {
			t.Fatalf("Compose(%v, %v): %v", a, c, err)
		}
		compose = append(compose, map[string]any{"text": text, "a": a, "b": c, "ab": ac, "out": applyOrFail(t, mid, c)})

		raw, in := randomUncanonical(r)
		out, err := ot.Normalize(in)
		if err != nil {
			t.Fatalf("Normalize(%v): %v", in, err)
		}
		normalize = append(normalize, map[string]any{"in": raw, "out": out})

		inv, err := ot.Invert(a, text)
		if err != nil {
			t.Fatalf("Invert(%v, %q): %v", a, text, err)
		}
		invert = append(invert, map[string]any{"base": text, "op": a, "inv": inv})
		apply = append(apply, map[string]any{"text": text, "op": a, "out": mid})

		n := utf8.RuneCountInString(text)
		at := r.IntN(n + 1)
		for _, own := range []bool{false, true} {
			index = append(index, map[string]any{"op": a, "index": at, "own": own, "out": ot.TransformIndex(a, at, own)})
		}
		from := r.IntN(n + 1)
		to := from + r.IntN(n-from+1)
		moved := ot.TransformRange(a, ot.Range{From: from, To: to})
		rng = append(rng, map[string]any{"op": a, "from": from, "to": to, "out": map[string]int{"from": moved.From, "to": moved.To}})

		pos, del := r.IntN(4), r.IntN(3)
		ins := ""
		if r.IntN(3) > 0 {
			ins = randomText(r, 2)
		}
		splice = append(splice, map[string]any{"pos": pos, "del": del, "ins": ins, "out": ot.Splice(pos, del, ins)})
	}
	add("transform", transform)
	add("compose", compose)
	add("normalize", normalize)
	add("invert", invert)
	add("apply", apply)
	add("index", index)
	add("range", rng)
	add("splice", splice)

	// Inputs the decoder must refuse, and ops that do or do not apply.
	var decodeErrors []any
	for _, in := range []string{`[0]`, `[""]`, `[1.5]`, `[true]`, `[null]`, `[[1]]`, `[{"a":1}]`, `{}`, `"x"`, `[2147483648]`, `[-2147483648]`} {
		_, err := ot.Decode([]byte(in))
		decodeErrors = append(decodeErrors, map[string]any{"in": in, "error": err != nil})
	}
	add("decode_errors", decodeErrors)
	var applyErrors []any
	for _, c := range []struct {
		text string
		op   string
	}{{"", `[-1]`}, {"ab", `[2,-1]`}, {"😀", `[1,"x"]`}, {"😀", `[-1]`}, {"abc", `[]`}, {"abc", `[3,"x"]`}, {"abc", `[4,"x"]`}} {
		op, err := ot.Decode([]byte(c.op))
		if err != nil {
			t.Fatalf("Decode(%s): %v", c.op, err)
		}
		_, err = ot.Apply(c.text, op)
		applyErrors = append(applyErrors, map[string]any{"text": c.text, "op": op, "error": err != nil})
	}
	add("apply_errors", applyErrors)

	var buf bytes.Buffer
	buf.WriteString(`{"_comment": "Generated by the Go ot package (go test ./ot -run Parity -update; ot/parity_test.go), which fails when this file is stale. The JS client must give identical results (ot.test.mjs).",` + "\n")
	buf.WriteString(strings.Join(sections, ",\n"))
	buf.WriteString("\n}\n")
	return buf.Bytes()
}

// randomUncanonical returns a random op as raw components, adjacent
// components of one kind and deletes before inserts included, both as the
// JSON values a client might send and as an Op.
func randomUncanonical(r *rand.Rand) ([]any, ot.Op) {
	var raw []any
	var op ot.Op
	for range 1 + r.IntN(6) {
		switch r.IntN(3) {
		case 0:
			n := 1 + r.IntN(4)
			raw, op = append(raw, n), append(op, ot.Retain(n))
		case 1:
			s := randomText(r, 2) + pieces[r.IntN(len(pieces))]
			raw, op = append(raw, s), append(op, ot.Insert(s))
		default:
			n := 1 + r.IntN(4)
			raw, op = append(raw, -n), append(op, ot.Delete(n))
		}
	}
	return raw, op
}

func applyOrFail(t *testing.T, s string, op ot.Op) string {
	t.Helper()
	out, err := ot.Apply(s, op)
	if err != nil {
		t.Fatalf("Apply(%q, %v): %v", s, op, err)
	}
	return out
}

// marshalCase writes one case as one line of JSON, keys sorted, text as
// UTF-8 rather than escaped.
func marshalCase(t *testing.T, v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
