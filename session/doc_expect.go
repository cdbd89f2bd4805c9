package session

import (
	"sync/atomic"
	"time"
)

// expectFor is how long a document lends the op log an editor it has just
// acked (WriteExpecter): an editor with more to send sends its next op at
// once, and one that does not within this time is not waited for.
const expectFor = 50 * time.Millisecond

// expectForTest, when set, replaces expectFor (tests).
var expectForTest atomic.Int64

// A round (a drainDurable that publishes ops) replaces who is expected
// with the authors it acked: whoever was expected from the round before
// and has not sent since is dropped, not waited for again. So a count
// stays lent for at most expectFor after the document's last round.
//
// expectAgain starts a round: it forgets who is expected without telling
// the op log (expectLend settles the difference).
func (s *docSession) expectAgain() {
	if s.expecter == nil {
		return
	}
	clear(s.expecting)
}

// expectFrom notes that author (a client id; empty for a server-side
// edit) was acked in this round.
func (s *docSession) expectFrom(author string) {
	if s.expecter == nil || author == "" || s.members[author] == nil {
		return
	}
	s.expecting[author] = struct{}{}
}

// expectLend ends a round: it lends the op log the authors of the round and
// takes back the ones of the round before.
func (s *docSession) expectLend() {
	if s.expecter == nil {
		return
	}
	if d := len(s.expecting) - s.lent; d != 0 {
		s.expecter.ExpectWrites(d)
	}
	s.lent = len(s.expecting)
	if s.lent > 0 {
		d := expectFor
		if t := expectForTest.Load(); t > 0 {
			d = time.Duration(t)
		}
		s.expectDue.Reset(d)
	} else {
		s.expectDue.Stop()
	}
}

// expectArrived takes back client's count, if it was expected, when an op
// from it has arrived: after the op was submitted to the op log, so that
// a commit that stops waiting because nothing is expected any more finds
// the op queued.
func (s *docSession) expectArrived(client string) {
	if s.expecter == nil {
		return
	}
	if _, ok := s.expecting[client]; ok {
		delete(s.expecting, client)
		s.lent--
		s.expecter.ExpectWrites(-1)
	}
}

// expectNone takes back every count lent: expectFor passed since the last
// commit, or the session ends.
func (s *docSession) expectNone() {
	if s.expecter == nil {
		return
	}
	if s.lent > 0 {
		s.expecter.ExpectWrites(-s.lent)
	}
	s.lent = 0
	clear(s.expecting)
	s.expectDue.Stop()
}
