package doc

import (
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/ot"
)

// ErrVersionGap: a history's ops do not follow on from each other or from
// the snapshot they are replayed on.
var ErrVersionGap = errors.New("doc: versions are not contiguous")

// Replay returns the content at version to: it starts from snap and applies,
// in order, the ops of recs whose versions lie in [snap.Version, to). recs
// must hold those versions contiguously (records before snap.Version are
// skipped, records at or past to are ignored). Replay is pure; storage and
// the HTTP API use it to answer "content at version v".
func Replay(snap Snapshot, recs []OpRecord, to int) (string, error) {
	if to < snap.Version {
		return "", fmt.Errorf("replay to v%d from a snapshot at v%d: %w", to, snap.Version, ErrVersionGap)
	}
	r := NewRope(snap.Content)
	v := snap.Version
	for _, rec := range recs {
		if rec.Version < v {
			continue
		}
		if rec.Version >= to {
			break
		}
		if rec.Version != v {
			return "", fmt.Errorf("replay: want op v%d, have v%d: %w", v, rec.Version, ErrVersionGap)
		}
		if err := ot.ApplyTo(r, rec.Op); err != nil {
			return "", fmt.Errorf("replay op v%d: %w", rec.Version, err)
		}
		v++
	}
	if v != to {
		return "", fmt.Errorf("replay: ops end at v%d, want v%d: %w", v, to, ErrVersionGap)
	}
	return r.String(), nil
}
