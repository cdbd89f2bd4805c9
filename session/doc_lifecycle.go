package session

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/proto"
)

// unload flushes, writes a snapshot and the comments, and leaves the
// manager. It returns false, and stays, when requests arrived meanwhile.
//
// It writes before it leaves the manager: while it is still there, every
// request for the document comes to it, so no new session can load the
// document and change its comments (a deletion, an edit) before this
// session's writes land on top of them.
func (s *docSession) unload() bool {
	s.flush()
	if s.cl != nil {
		s.flushCluster()
	}
	d := s.docs
	d.mu.Lock()
	busy := len(s.reqs) > 0 && !d.closed
	d.mu.Unlock()
	if busy {
		return false
	}
	if s.loaded && s.loadErr == nil && s.failed() == nil {
		s.persist()
	}
	d.mu.Lock()
	if len(s.reqs) > 0 && !d.closed {
		d.mu.Unlock()
		return false // what was persisted stays true; the session goes on
	}
	delete(d.sessions, s.id)
	close(s.done)
	d.mu.Unlock()
	if s.cl != nil {
		for cid := range s.members {
			s.leaveBus(cid)
		}
		s.stopFollowing()
		if s.cl.retry != nil {
			s.cl.retry.Stop()
		}
		if s.cl.parkDue != nil {
			s.cl.parkDue.Stop()
		}
		for _, p := range s.cl.parked {
			p.r.fail(fmt.Errorf("%s: %w", s.id, ErrTryAgain))
		}
	}
	// Requests that slipped in before done closed go to the next session.
	for {
		select {
		case r := <-s.reqs:
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.submit(s.id, r)
			}()
		default:
			s.log.Debug().Msg("unloaded")
			return true
		}
	}
}

// persist writes a snapshot of the head and every comment's current range.
func (s *docSession) persist() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := &s.docs.cfg
	if err := cfg.Snapshots.PutSnapshot(ctx, s.id, doc.Snapshot{Version: s.doc.Version(), Content: s.headContent()}); err != nil {
		s.log.Error().Err(err).Msg("snapshot on unload")
	}
	if cs := s.doc.Comments(); len(cs) > 0 && s.cl == nil {
		// (In cluster mode the store holds every comment as written, and
		// other nodes may have changed them since: they are not rewritten.)
		if err := cfg.Comments.PutComments(ctx, s.id, cs); err != nil {
			s.log.Error().Err(err).Msg("comments on unload")
		}
	}
}

// headContent returns the text at the head, from the cache when it is
// there (the string is shared: strings never change).
func (s *docSession) headContent() string {
	if s.contentV != s.doc.Version() {
		s.content, s.contentV = s.doc.Content(), s.doc.Version()
	}
	return s.content
}

// forget drops everything the session knows of the document, so that the
// next request loads it afresh; the members stay.
func (s *docSession) forget() {
	s.loaded, s.loadErr, s.doc, s.epoch = false, nil, nil, ""
	s.recent, s.uids, s.uidFloor = nil, map[string]int{}, 0
	s.content, s.contentV = "", -1
	s.commentN = 0
	if s.cl != nil {
		s.stopFollowing()
		s.cl.halted, s.cl.have, s.cl.okTo, s.cl.ambiguous = false, 0, 0, false
		s.acked = 0
	}
}

// load reads the document from storage, once. create says whether a
// missing document may be created empty.
func (s *docSession) load(create bool) error {
	if s.loaded {
		if s.loadErr == nil && s.failed() != nil {
			return fmt.Errorf("%s: %w", s.id, ErrStorage)
		}
		return s.loadErr
	}
	cfg := &s.docs.cfg
	info, err := cfg.Documents.GetDoc(s.id)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("load %s: %w", s.id, err)
	}
	if err != nil { // not found
		if !create {
			return fmt.Errorf("%s: %w", s.id, ErrDocNotFound)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		info, err = cfg.Documents.CreateDoc(ctx, doc.Info{ID: s.id, Created: cfg.Now()})
		cancel()
		switch {
		case isExists(err):
			info, err = cfg.Documents.GetDoc(s.id)
		case err == nil:
			s.docs.Announce("created", s.id, nil)
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", s.id, err)
		}
	}
	s.epoch = info.Epoch
	if s.epoch == "" {
		s.epoch = "none" // a store that keeps no epochs: one for every incarnation
	}
	if s.cl != nil {
		if err := s.loadCluster(); err != nil {
			return err
		}
	}
	snap, tail, err := cfg.Snapshots.Head(s.id)
	if err != nil {
		s.loaded, s.loadErr = true, fmt.Errorf("load %s: %w", s.id, err)
		return s.loadErr
	}
	d, err := doc.Restore(s.id, snap, tail)
	if err != nil {
		s.loaded, s.loadErr = true, fmt.Errorf("load %s: %w", s.id, err)
		return s.loadErr
	}
	comments, err := cfg.Comments.Comments(s.id)
	if err != nil {
		s.loaded, s.loadErr = true, fmt.Errorf("load %s comments: %w", s.id, err)
		return s.loadErr
	}
	for _, c := range comments {
		s.commentN++
		c = s.catchUp(c, d)
		if err := d.AddComment(c); err != nil {
			s.log.Error().Err(err).Str("comment", c.ID).Msg("comment dropped on load")
		}
	}
	s.doc = d
	s.acked = d.Version()
	s.recent = slices.Clone(tail)
	s.uidFloor = snap.Version // the tail holds every op from there on
	for _, rec := range s.recent {
		s.uids[rec.UID] = rec.Version
	}
	if s.cl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.startFollowing(ctx)
		cancel()
		if err != nil {
			s.forget()
			return fmt.Errorf("load %s: %w", s.id, err) // not remembered: the next request tries again
		}
	}
	s.loaded = true
	return nil
}

// loadCluster prepares a load in cluster mode: a fence a former session
// left is lifted, and comment changes are watched before the comments are
// read.
func (s *docSession) loadCluster() error {
	s.cl.log.ResumeAppends(s.id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.watchComments(ctx); err != nil {
		s.stopFollowing()
		return fmt.Errorf("load %s: %w", s.id, err)
	}
	return nil
}

// catchUp moves a stored comment's range to the head of d.
func (s *docSession) catchUp(c doc.Comment, d *doc.Document) doc.Comment {
	if c.Version < d.Version() {
		recs, err := s.docs.cfg.OpLog.Ops(s.id, c.Version, d.Version())
		if err == nil {
			if moved, err := doc.CatchUp(c, recs); err == nil {
				return moved
			}
		}
		s.log.Warn().Str("comment", c.ID).Msg("comment history gone; keeping its range as stored")
	}
	// A comment stored ahead of the log (a crash lost ops after it was
	// written) or whose history is gone: clamp it into the text.
	n := d.Len()
	c.Range.From, c.Range.To = min(max(c.Range.From, 0), n), min(max(c.Range.To, 0), n)
	c.Range.From = min(c.Range.From, c.Range.To)
	return c
}

// deleteDoc closes the document for everyone and deletes it.
func (s *docSession) deleteDoc(r *docRequest) {
	s.flush()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.docs.cfg.Documents.DeleteDoc(ctx, s.id)
	cancel()
	if err != nil {
		r.fail(fmt.Errorf("delete %s: %w", s.id, err))
		return
	}
	if s.cl != nil {
		s.closeAll("deleted", fmt.Errorf("%s: %w", s.id, ErrDocNotFound))
		r.done <- EditResult{}
		return
	}
	frame := proto.Encode(proto.Closed{Type: proto.TypeClosed, Doc: s.id, Reason: "deleted"})
	for cid, m := range s.members {
		m.client.Sub.Send(frame)
		delete(s.members, cid)
	}
	s.memberCount.Store(0)
	// Forget everything: the next request loads afresh (and finds nothing,
	// or a new incarnation with its own epoch).
	s.forget()
	r.done <- EditResult{}
}
