package doc

import (
	"math/rand/v2"
	"strings"

	"github.com/tandemhq/tandem/ot"
)

// A Typist generates a realistic synthetic editing history: bursts of typing
// words at a caret, backspacing over typos, forward deletes, cursor jumps,
// pastes, and selections deleted or typed over, with the occasional
// non-ASCII character (accents, CJK, emoji). It is deterministic for a seed,
// so tests that use it are repeatable and need no outside data.
//
// Each op it returns is a canonical [ot.Op] made against a text of the
// length it is told. In a multi-user test, pass others' ops to Observe so
// the caret moves with the text.
type Typist struct {
	r     *rand.Rand
	caret int
	word  []string // the rest of the word being typed, one character each
}

// NewTypist returns a Typist whose choices follow seed.
func NewTypist(seed uint64) *Typist {
	return &Typist{r: rand.New(rand.NewPCG(seed, 0x7a11d3))}
}

var typistWords = strings.Fields(`the a of to and in is it that for on with as was
	this be at by not are from or have an they which one you were all we her she
	there would their will when who him been has more if no out so said what up
	its about into than them can only other new some could time these two may
	then do first any my now such like our over man me even most made after also
	did many before must through back years where much your way well down should
	because each just those people how too little state good very make world
	still own see men work long get here between both life being under never day
	same another know while last might us great old year off come since against
	go came right used take three café naïve résumé 漢字 日本語 😀 🎉 👍🏽`)

var typistPunct = []string{" ", " ", " ", " ", ", ", ". ", ".\n", "\n", "\n\n", "; ", "? "}

// Observe moves the caret through someone else's op, as an editor does.
func (t *Typist) Observe(op ot.Op) {
	t.caret = ot.TransformIndex(op, t.caret, false)
}

// Next returns the next edit for a text of length code points, never a
// no-op. The Typist assumes the edit is applied before the next call.
func (t *Typist) Next(length int) ot.Op {
	t.caret = min(max(t.caret, 0), length)
	for {
		switch k := t.r.IntN(1000); {
		case k < 800 || length == 0: // type the next character
			return t.typeChar()
		case k < 880 && t.caret > 0: // backspace
			t.word = nil
			t.caret--
			return ot.Splice(t.caret, 1, "")
		case k < 910 && t.caret < length: // forward delete
			return ot.Splice(t.caret, 1, "")
		case k < 960: // jump the caret somewhere, then edit there
			t.word = nil
			if t.r.IntN(3) == 0 {
				t.caret = length // back to the end, where most writing happens
			} else {
				t.caret = t.r.IntN(length + 1)
			}
		case k < 975: // paste a few words
			var sb strings.Builder
			for range 2 + t.r.IntN(30) {
				sb.WriteString(typistWords[t.r.IntN(len(typistWords))])
				sb.WriteString(typistPunct[t.r.IntN(len(typistPunct))])
			}
			s := sb.String()
			op := ot.Splice(t.caret, 0, s)
			t.caret += ot.Insert(s).Len()
			return op
		case t.caret < length: // select a stretch and delete or type over it
			n := 1 + t.r.IntN(min(length-t.caret, 40))
			ins := ""
			if t.r.IntN(2) == 0 {
				ins = typistWords[t.r.IntN(len(typistWords))]
			}
			op := ot.Splice(t.caret, n, ins)
			t.caret += ot.Insert(ins).Len()
			return op
		}
	}
}

// typeChar inserts the next character of the current word at the caret,
// starting a new word (after a space or punctuation) when one is done.
func (t *Typist) typeChar() ot.Op {
	if len(t.word) == 0 {
		w := typistWords[t.r.IntN(len(typistWords))]
		t.word = strings.Split(w+typistPunct[t.r.IntN(len(typistPunct))], "")
	}
	ch := t.word[0]
	t.word = t.word[1:]
	op := ot.Splice(t.caret, 0, ch)
	t.caret++
	return op
}

// SyntheticHistory returns n ops a Typist with this seed makes on an empty
// document, and the text they leave.
func SyntheticHistory(seed uint64, n int) ([]ot.Op, string) {
	t := NewTypist(seed)
	d := New("synthetic")
	ops := make([]ot.Op, n)
	for i := range ops {
		ops[i] = t.Next(d.Len())
		if err := d.Apply(ops[i]); err != nil {
			panic("doc: typist made an op that does not apply: " + err.Error())
		}
	}
	return ops, d.Content()
}
