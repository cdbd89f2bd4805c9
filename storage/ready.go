package storage

import (
	"fmt"
)

// Ready reports whether the database takes writes, without writing
// anything: it fails once the store is closed, and while its latest write
// transaction failed (until one commits again). /healthz calls it, so that a
// flood of health checks costs no transaction and no fsync; a disk that
// stopped taking writes shows at the next write, which every op, message
// and receipt is.
func (db *DB) Ready() error {
	c := db.commits
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("storage not writable: %w", ErrClosed)
	}
	c.statsMu.Lock()
	err := c.lastTxErr
	c.statsMu.Unlock()
	if err != nil {
		return fmt.Errorf("storage not writable: the latest commit failed: %w", err)
	}
	return nil
}
