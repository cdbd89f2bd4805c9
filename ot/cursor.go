package ot

// TransformIndex moves a position (a caret, one end of a selection) through
// op, which was applied to the text the position points into.
//
// A position inside text that op deletes moves to where that text was. Text
// inserted exactly at the position is the only choice to make, and own makes
// it: when own is true (the op is the same user's, who typed at their caret)
// the position moves past the inserted text; when own is false (someone
// else's op) it stays in front of it, so another person typing at your caret
// does not push it along. The result lies in [0, len+Delta] whenever index
// lies in [0, len] for the text's length len.
func TransformIndex(op Op, index int, own bool) int {
	out := index
	pos := 0
	for _, c := range op {
		switch {
		case c.s != "":
			if pos < index || (pos == index && own) {
				out += c.n
			}
		case c.n > 0:
			pos += c.n
		default:
			if pos < index {
				out -= min(-c.n, index-pos)
			}
			pos -= c.n
		}
		if pos > index {
			break
		}
	}
	return out
}

// A Range is a stretch of text [From, To) in code points, as a comment anchor
// holds. From <= To; From == To is a point.
type Range struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// TransformRange moves a range through op so that it stays on its text. Text
// inserted at either boundary stays outside the range: the range does not
// grow when someone types right before or after it. A range whose text is
// deleted collapses to a point where the text was and is kept. A point stays
// a point and stays in front of text inserted at it.
func TransformRange(op Op, r Range) Range {
	if len(op) > 0 && op[0].IsRetain() && r.To < op[0].n {
		return r // the op starts past the range: the common case for anchors
	}
	if r.From == r.To {
		p := TransformIndex(op, r.From, false)
		return Range{From: p, To: p}
	}
	from := TransformIndex(op, r.From, true)
	to := TransformIndex(op, r.To, false)
	if to < from {
		to = from
	}
	return Range{From: from, To: to}
}

// A Selection is a caret or a selected stretch: Anchor is where the selection
// started and Head where the caret is; Anchor == Head is a bare caret. Either
// may be the larger.
type Selection struct {
	Anchor int `json:"anchor"`
	Head   int `json:"head"`
}

// TransformSelection moves both ends of s through op with TransformIndex;
// own says whether op is the selection owner's own edit.
func TransformSelection(op Op, s Selection, own bool) Selection {
	return Selection{
		Anchor: TransformIndex(op, s.Anchor, own),
		Head:   TransformIndex(op, s.Head, own),
	}
}
