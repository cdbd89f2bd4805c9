package ot

import "fmt"

// iter walks an op's components, allowing the current one to be consumed in
// parts. Past the last component it yields the zero Component, which stands
// for the implicit retain of the rest of the text.
type iter struct {
	op Op
	i  int
	c  Component // what is left of op[i]; zero when exhausted
}

func newIter(op Op) iter {
	it := iter{op: op, i: -1}
	it.next()
	return it
}

func (it *iter) next() {
	it.i++
	if it.i < len(it.op) {
		it.c = it.op[it.i]
	} else {
		it.c = Component{}
	}
}

// take consumes m code points of the current component, 0 < m <= its Len.
// The consumed prefix of an insert is returned.
func (it *iter) take(m int) string {
	c := &it.c
	switch {
	case c.s != "":
		cut := byteOffset(c.s, m)
		head := c.s[:cut]
		c.s, c.n = c.s[cut:], c.n-m
		if c.n == 0 {
			it.next()
		}
		return head
	case c.n > 0:
		c.n -= m
	default:
		c.n += m
	}
	if c.n == 0 {
		it.next()
	}
	return ""
}

// checkNonZero returns an error naming the first zero-length component.
func checkNonZero(name string, op Op) error {
	for i, c := range op {
		if c.n == 0 {
			return fmt.Errorf("%s component %d: %w", name, i, ErrZeroLength)
		}
	}
	return nil
}

// Transform takes two ops a and b made concurrently against the same text
// and returns a2 and b2 such that applying a then b2 gives the same text as
// applying b then a2 (TP1).
//
// Tie-break: when a and b insert at the same position, a's insert stands
// first. The server therefore calls Transform(historyOp, incoming) (the op it
// applied first wins) and a client calls Transform(incoming, pending) (the
// server's op wins). An insert at a position the other op deletes is kept.
//
// The ops need not reach equally far: text past the end of either is
// retained. Both results are canonical. Transform fails only when an op
// holds a zero-length component.
func Transform(a, b Op) (a2, b2 Op, err error) {
	if err := checkNonZero("a", a); err != nil {
		return nil, nil, fmt.Errorf("transform: %w", err)
	}
	if err := checkNonZero("b", b); err != nil {
		return nil, nil, fmt.Errorf("transform: %w", err)
	}
	ab := Builder{ops: make(Op, 0, len(a)+2)}
	bb := Builder{ops: make(Op, 0, len(b)+2)}
	transform(a, b, &ab, &bb)
	return ab.Op(), bb.Op(), nil
}

// TransformRight returns b2 of Transform(a, b) alone, built in buf's
// memory (from buf[:0]; a nil buf allocates): the server's case, which
// transforms an incoming op over each op of the history and never needs
// the history's side. buf must not share memory with a or b; the result
// does, with buf, until buf is used again.
func TransformRight(a, b, buf Op) (Op, error) {
	if err := checkNonZero("a", a); err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	if err := checkNonZero("b", b); err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	ab := Builder{discard: true}
	bb := Builder{ops: buf[:0]}
	transform(a, b, &ab, &bb)
	return bb.Op(), nil
}

// transform is Transform's walk: it builds a2 into ab and b2 into bb.
func transform(a, b Op, ab, bb *Builder) {
	ia, ib := newIter(a), newIter(b)
	for {
		ca, cb := ia.c, ib.c
		switch {
		case ca.s != "": // a's inserts first: a wins ties
			ab.insertN(ca.s, ca.n)
			bb.Retain(ca.n)
			ia.next()
		case cb.s != "":
			ab.Retain(cb.n)
			bb.insertN(cb.s, cb.n)
			ib.next()
		case ca.n == 0 && cb.n == 0:
			return
		case ca.n == 0: // a is done: it retains the rest
			if cb.n > 0 {
				ab.Retain(cb.n)
				bb.Retain(cb.n)
			} else {
				bb.Delete(-cb.n)
			}
			ib.next()
		case cb.n == 0: // b is done: it retains the rest
			if ca.n > 0 {
				ab.Retain(ca.n)
				bb.Retain(ca.n)
			} else {
				ab.Delete(-ca.n)
			}
			ia.next()
		default:
			m := min(ca.Len(), cb.Len())
			switch {
			case ca.n > 0 && cb.n > 0:
				ab.Retain(m)
				bb.Retain(m)
			case ca.n < 0 && cb.n < 0:
				// Both delete the same text: neither needs to any more.
			case ca.n < 0:
				ab.Delete(m)
			default:
				bb.Delete(m)
			}
			ia.take(m)
			ib.take(m)
		}
	}
}

// Compose returns one op that does what applying a and then b does: for
// every text s that a applies to, Apply(Apply(s, a), b) equals
// Apply(s, Compose(a, b)) whenever b applies to a's result. The result is
// canonical. Compose fails only when an op holds a zero-length component.
func Compose(a, b Op) (Op, error) {
	if err := checkNonZero("a", a); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if err := checkNonZero("b", b); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	var out Builder
	out.ops = make(Op, 0, len(a)+len(b))
	ia, ib := newIter(a), newIter(b)
	for {
		ca, cb := ia.c, ib.c
		switch {
		case ca.s == "" && ca.n < 0: // a's deletes come first; b never sees that text
			out.Delete(-ca.n)
			ia.next()
		case cb.s != "":
			out.insertN(cb.s, cb.n)
			ib.next()
		case ca.n == 0 && cb.n == 0:
			return out.Op(), nil
		case ca.n == 0: // a retains the rest: b's retain or delete stands as is
			out.add(cb)
			ib.next()
		case cb.n == 0: // b retains the rest: a's retain or insert stands as is
			out.add(ca)
			ia.next()
		default:
			m := min(ca.Len(), cb.Len())
			switch {
			case ca.s != "" && cb.n > 0: // inserted, then kept
				out.insertN(ia.take(m), m)
				ib.take(m)
				continue
			case ca.s != "": // inserted, then deleted: nothing
			case cb.n > 0:
				out.Retain(m)
			default:
				out.Delete(m)
			}
			ia.take(m)
			ib.take(m)
		}
	}
}
