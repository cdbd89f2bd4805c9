package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// Ready reports whether the database takes writes: it commits a heartbeat
// (the time, in the meta bucket) through the group commit, within two
// seconds. /healthz calls it.
func (db *DB) Ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := db.update(ctx, func(w *writeTx) error {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(w.now.UnixNano()))
		b := w.tx.Bucket(bucketMeta)
		if b == nil {
			return fmt.Errorf("no meta bucket: %w", ErrCorrupt)
		}
		return abort(b.Put([]byte("heartbeat"), v[:]))
	})
	if err != nil {
		return fmt.Errorf("storage not writable: %w", err)
	}
	return nil
}
