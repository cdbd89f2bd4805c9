package doc

import (
	"time"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/tandemhq/tandem/ot"
)

// DiffOp returns a canonical op that turns old into new, built from a
// character diff (go-diff's Myers diff, cleaned up for efficiency), so
// that a whole-text replacement becomes a small edit that live editors
// can merge with their own typing. Apply(old, DiffOp(old, new)) == new.
// It has no deadline: use DiffOpWithin for text from outside.
func DiffOp(old, new string) ot.Op {
	op, _ := DiffOpWithin(old, new, DiffBudget{})
	return op
}

// DiffBudget bounds the work and the result of DiffOpWithin.
type DiffBudget struct {
	// Timeout is go-diff's DiffTimeout: past it the diff of what is left
	// is a delete and an insert. Zero means no deadline.
	Timeout time.Duration
	// MaxWork bounds the product of the lengths of the changed middles
	// (what is left between the texts' common prefix and suffix) that a
	// character diff may take on, and then of their numbers of lines for
	// a line diff; past both the op replaces the middle whole. go-diff
	// has steps outside its deadline that take time proportional to that
	// product in the worst case (a naive substring search). Zero means no
	// bound.
	MaxWork int
	// MaxEdits bounds the stretches of inserted or deleted text the op may
	// hold; past it the op replaces the middle whole. Zero means no bound.
	MaxEdits int
}

// DiffOpWithin is DiffOp within a budget: the common prefix and suffix are
// kept; the middle is diffed by character when it is small enough for
// b.MaxWork, else by line when that is, else replaced whole; the diff
// stops looking for a smaller op after b.Timeout; and an op of more than
// b.MaxEdits edits gives way to the whole replacement. The op always turns
// old into new; only its size depends on the budget. coarse reports that
// the budget cut the search short (the op may be larger than the
// smallest).
//
// Its time is bounded by b.Timeout plus work linear in the texts' lengths
// plus work proportional to b.MaxWork, and its memory by a few times the
// texts' size (go-diff works on runes).
func DiffOpWithin(old, new string, b DiffBudget) (op ot.Op, coarse bool) {
	if old == new {
		return ot.Op{}, false
	}
	p, q := commonEnds(old, new)
	oldMid, newMid := old[p:len(old)-q], new[p:len(new)-q]
	n, m := utf8.RuneCountInString(oldMid), utf8.RuneCountInString(newMid)
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = b.Timeout // 0: exact, however long it takes
	start := time.Now()
	var diffs []diffmatchpatch.Diff
	switch {
	case b.MaxWork <= 0 || n*m <= b.MaxWork:
		diffs = dmp.DiffMain(oldMid, newMid, false)
	default:
		coarse = true
		a, c, lines := dmp.DiffLinesToRunes(oldMid, newMid)
		if len(a)*len(c) > b.MaxWork {
			return ReplaceOp(old, new), true
		}
		diffs = dmp.DiffCharsToLines(dmp.DiffMainRunes(a, c, false), lines)
	}
	diffs = dmp.DiffCleanupEfficiency(diffs)
	coarse = coarse || b.Timeout > 0 && time.Since(start) >= b.Timeout
	if b.MaxEdits > 0 {
		edits := 0
		for _, d := range diffs {
			if d.Type != diffmatchpatch.DiffEqual {
				edits++
			}
		}
		if edits > b.MaxEdits {
			return ReplaceOp(old, new), true
		}
	}
	var bl ot.Builder
	bl.Retain(utf8.RuneCountInString(old[:p]))
	for _, d := range diffs {
		switch d.Type {
		case diffmatchpatch.DiffEqual:
			bl.Retain(utf8.RuneCountInString(d.Text))
		case diffmatchpatch.DiffInsert:
			bl.Insert(d.Text)
		case diffmatchpatch.DiffDelete:
			bl.Delete(utf8.RuneCountInString(d.Text))
		}
	}
	return bl.Op(), coarse
}

// ReplaceOp returns the op that turns old into new by replacing the range
// between their common prefix and common suffix whole: at most one delete
// and one insert. It takes time linear in the texts' lengths.
func ReplaceOp(old, new string) ot.Op {
	p, q := commonEnds(old, new)
	var b ot.Builder
	b.Retain(utf8.RuneCountInString(old[:p]))
	b.Delete(utf8.RuneCountInString(old[p : len(old)-q]))
	b.Insert(new[p : len(new)-q])
	return b.Op()
}

// commonEnds returns the lengths in bytes of the common prefix and, of what
// follows it, the common suffix of a and b, both cut at rune boundaries.
func commonEnds(a, b string) (prefix, suffix int) {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	for p > 0 && ((p < len(a) && !utf8.RuneStart(a[p])) || (p < len(b) && !utf8.RuneStart(b[p]))) {
		p--
	}
	a, b = a[p:], b[p:]
	q := 0
	for q < len(a) && q < len(b) && a[len(a)-1-q] == b[len(b)-1-q] {
		q++
	}
	for q > 0 && (!utf8.RuneStart(a[len(a)-q]) || !utf8.RuneStart(b[len(b)-q])) {
		q--
	}
	return p, q
}

// A Change is one stretch of a structured diff between two versions of a
// text: kept, inserted or deleted.
type Change struct {
	Kind string `json:"kind"` // "equal", "insert" or "delete"
	Text string `json:"text"`
}

// Diff compares two texts: the structured changes (semantically cleaned
// up, for people to read) and a unified-style patch in go-diff's patch
// text format.
func Diff(old, new string) (changes []Change, patch string) {
	dmp := diffmatchpatch.New()
	diffs := dmp.DiffMain(old, new, true)
	diffs = dmp.DiffCleanupSemantic(diffs)
	changes = make([]Change, 0, len(diffs))
	for _, d := range diffs {
		kind := "equal"
		switch d.Type {
		case diffmatchpatch.DiffInsert:
			kind = "insert"
		case diffmatchpatch.DiffDelete:
			kind = "delete"
		}
		changes = append(changes, Change{Kind: kind, Text: d.Text})
	}
	return changes, dmp.PatchToText(dmp.PatchMake(old, diffs))
}
