package ot_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/ot"
)

// typingHistory returns a text and n single-character edits applied one
// after the other to it, at random places, as concurrent typists make them.
func typingHistory(r *rand.Rand, n int) (string, []ot.Op) {
	base := strings.Repeat("lorem ipsum dolor sit amet ", 200)
	text := base
	length := utf8.RuneCountInString(text)
	ops := make([]ot.Op, n)
	for i := range ops {
		pos := r.IntN(length)
		if r.IntN(4) == 0 {
			ops[i] = ot.Splice(pos, 1, "")
			length--
		} else {
			ops[i] = ot.Splice(pos, 0, "x")
			length++
		}
	}
	return base, ops
}

// BenchmarkTransformOverHistory transforms one op, made against an old
// version, over 1,000 concurrent ops one at a time, as the server does for a
// client that fell 1,000 versions behind. One iteration is the whole run.
func BenchmarkTransformOverHistory(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	_, history := typingHistory(r, 1000)
	mine := ot.Op{ot.Retain(2500), ot.Insert("hello"), ot.Delete(3)}
	b.ReportAllocs()
	for b.Loop() {
		op := mine
		for _, h := range history {
			_, op, _ = ot.Transform(h, op)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(history)), "ns/transform")
}

// BenchmarkComposeTyping composes 1,000 consecutive single-character ops
// (someone typing a paragraph with the odd backspace) into one, as a client
// does with its buffer while an op is in flight.
func BenchmarkComposeTyping(b *testing.B) {
	ops := make([]ot.Op, 1000)
	pos := 100
	for i := range ops {
		if i%10 == 9 {
			pos--
			ops[i] = ot.Splice(pos, 1, "")
		} else {
			ops[i] = ot.Splice(pos, 0, "k")
			pos++
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		acc := ops[0]
		for _, op := range ops[1:] {
			acc, _ = ot.Compose(acc, op)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ops)), "ns/compose")
}
