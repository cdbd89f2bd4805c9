package ot_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// iterations of each random property; fewer under -short.
func iterations() int {
	if testing.Short() {
		return 2000
	}
	return 20000
}

// checkLaws checks every algebraic law on one random case and reports the
// first broken one. It is shared by the property tests and the fuzz targets.
func checkLaws(t *testing.T, seed uint64, text string) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed>>7))
	a, b := randomOp(r, text), randomOp(r, text)
	mustCanonical(t, "randomOp a", a)
	mustCanonical(t, "randomOp b", b)

	// TP1 in both argument orders.
	for _, order := range [][2]ot.Op{{a, b}, {b, a}} {
		x, y := order[0], order[1]
		x2, y2, err := ot.Transform(x, y)
		if err != nil {
			t.Fatalf("Transform(%v, %v): %v", x, y, err)
		}
		mustCanonical(t, "Transform a'", x2)
		mustCanonical(t, "Transform b'", y2)
		// TransformRight builds b' alone, in memory it is handed.
		scratch := ot.Op{ot.Insert("junk"), ot.Retain(3), ot.Delete(2)}
		y3, err := ot.TransformRight(x, y, scratch)
		if err != nil || !y3.Equal(y2) {
			t.Fatalf("TransformRight(%v, %v) = %v, %v; Transform's b' is %v", x, y, y3, err, y2)
		}
		got1 := apply(t, apply(t, text, x), y2)
		got2 := apply(t, apply(t, text, y), x2)
		if got1 != got2 {
			t.Fatalf("TP1 on %q, a=%v b=%v: a;b' = %q, b;a' = %q", text, x, y, got1, got2)
		}
	}

	// Compose agrees with applying in sequence.
	mid := apply(t, text, a)
	c := randomOp(r, mid)
	ac, err := ot.Compose(a, c)
	if err != nil {
		t.Fatalf("Compose(%v, %v): %v", a, c, err)
	}
	mustCanonical(t, "Compose", ac)
	if got, want := apply(t, text, ac), apply(t, mid, c); got != want {
		t.Fatalf("Compose(%v, %v) on %q = %q, sequence = %q", a, c, text, got, want)
	}

	// Invert undoes.
	inv, err := ot.Invert(a, text)
	if err != nil {
		t.Fatalf("Invert(%v, %q): %v", a, text, err)
	}
	mustCanonical(t, "Invert", inv)
	if got := apply(t, mid, inv); got != text {
		t.Fatalf("Invert(%v) on %q: got back %q", a, text, got)
	}

	// A transformed index stays inside the document, and the ends of a
	// range stay in order.
	n, m := utf8.RuneCountInString(text), utf8.RuneCountInString(mid)
	i := r.IntN(n + 1)
	for _, own := range []bool{false, true} {
		if j := ot.TransformIndex(a, i, own); j < 0 || j > m {
			t.Fatalf("TransformIndex(%v, %d, %v) = %d, outside [0, %d]", a, i, own, j, m)
		}
	}
	from := r.IntN(n + 1)
	to := from + r.IntN(n-from+1)
	rg := ot.TransformRange(a, ot.Range{From: from, To: to})
	if rg.From < 0 || rg.From > rg.To || rg.To > m {
		t.Fatalf("TransformRange(%v, [%d,%d)) = %v on a text of %d", a, from, to, rg, m)
	}

	// JSON round trip.
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ot.Decode(data)
	if err != nil || !back.Equal(a) {
		t.Fatalf("round trip of %v via %s = %v, %v", a, data, back, err)
	}
}

func TestLaws(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range iterations() {
		checkLaws(t, uint64(i), randomText(r, 12))
	}
}

// TestTransformOverHistory checks the server's rule: an op made against an
// old version, transformed over the history one op at a time, applies to the
// current text and converges with a client that transformed the history the
// other way.
func TestTransformOverHistory(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range iterations() / 10 {
		base := randomText(r, 10)
		text := base
		var history []ot.Op
		for range 1 + r.IntN(5) {
			h := randomOp(r, text)
			text = apply(t, text, h)
			history = append(history, h)
		}
		mine := randomOp(r, base)
		// Server side: mine over each history op in turn.
		server := mine
		for _, h := range history {
			var err error
			if _, server, err = ot.Transform(h, server); err != nil {
				t.Fatal(err)
			}
		}
		// The same with TransformRight, two buffers in turn, as the
		// server does it.
		var bufs [2]ot.Op
		right := mine
		for i, h := range history {
			var err error
			if right, err = ot.TransformRight(h, right, bufs[i%2]); err != nil {
				t.Fatal(err)
			}
			bufs[i%2] = right
		}
		if !right.Equal(server) {
			t.Fatalf("base %q, history %v, op %v: TransformRight in turn gives %v, Transform %v", base, history, mine, right, server)
		}
		// Client side: each history op over mine in turn.
		client, pending := apply(t, base, mine), mine
		for _, h := range history {
			h2, p2, err := ot.Transform(h, pending)
			if err != nil {
				t.Fatal(err)
			}
			client, pending = apply(t, client, h2), p2
		}
		if got := apply(t, text, server); got != client {
			t.Fatalf("base %q, history %v, op %v: server %q, client %q", base, history, mine, got, client)
		}
	}
}
