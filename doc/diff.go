package doc

import (
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/tandemhq/tandem/ot"
)

// DiffOp returns a canonical op that turns old into new, built from a
// character diff (go-diff's Myers diff, cleaned up for efficiency), so
// that a whole-text replacement becomes a small edit that live editors
// can merge with their own typing. Apply(old, DiffOp(old, new)) == new.
func DiffOp(old, new string) ot.Op {
	if old == new {
		return ot.Op{}
	}
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 0 // exact: the op must turn old into new
	diffs := dmp.DiffMain(old, new, false)
	diffs = dmp.DiffCleanupEfficiency(diffs)
	var b ot.Builder
	for _, d := range diffs {
		switch d.Type {
		case diffmatchpatch.DiffEqual:
			b.Retain(utf8.RuneCountInString(d.Text))
		case diffmatchpatch.DiffInsert:
			b.Insert(d.Text)
		case diffmatchpatch.DiffDelete:
			b.Delete(utf8.RuneCountInString(d.Text))
		}
	}
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
