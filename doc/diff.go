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
	// MaxEdits bounds the stretches of inserted or deleted text the op may
	// hold; past it the op replaces the whole range between the texts'
	// common prefix and suffix. Zero means no bound.
	MaxEdits int
}

// DiffOpWithin is DiffOp within a budget: the diff stops looking for a
// smaller op after b.Timeout, and an op of more than b.MaxEdits edits is
// replaced by one that replaces the changed range whole. The op always
// turns old into new; only its size depends on the budget. coarse reports
// that the budget was used up (the op may be larger than the smallest).
//
// The time it takes is bounded by b.Timeout plus work linear in the
// texts' lengths (the common prefix and suffix, the clean-up), and its
// memory by a few times their size (go-diff works on runes).
func DiffOpWithin(old, new string, b DiffBudget) (op ot.Op, coarse bool) {
	if old == new {
		return ot.Op{}, false
	}
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = b.Timeout // 0: exact, however long it takes
	start := time.Now()
	diffs := dmp.DiffMain(old, new, false)
	diffs = dmp.DiffCleanupEfficiency(diffs)
	coarse = b.Timeout > 0 && time.Since(start) >= b.Timeout
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
	p := 0 // common prefix, in bytes, at a rune boundary
	for p < len(old) && p < len(new) && old[p] == new[p] {
		p++
	}
	for p > 0 && ((p < len(old) && !utf8.RuneStart(old[p])) || (p < len(new) && !utf8.RuneStart(new[p]))) {
		p--
	}
	oldRest, newRest := old[p:], new[p:]
	q := 0 // common suffix of the rests, in bytes, at a rune boundary
	for q < len(oldRest) && q < len(newRest) && oldRest[len(oldRest)-1-q] == newRest[len(newRest)-1-q] {
		q++
	}
	for q > 0 && (!utf8.RuneStart(oldRest[len(oldRest)-q]) || !utf8.RuneStart(newRest[len(newRest)-q])) {
		q--
	}
	var b ot.Builder
	b.Retain(utf8.RuneCountInString(old[:p]))
	b.Delete(utf8.RuneCountInString(oldRest[:len(oldRest)-q]))
	b.Insert(newRest[:len(newRest)-q])
	return b.Op()
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
