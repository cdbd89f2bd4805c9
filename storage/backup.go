package storage

import (
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole data file while the store
// keeps serving: it calls start with the copy's size in bytes, then writes
// exactly that many bytes to the writer start returns. The copy is the
// state of one read transaction, so it never waits for writes and writes
// never wait for it; ops still in the journal are in the copy's journal,
// where Open finds them. A backup is restored by putting it in place of
// the data file of a stopped server.
func (db *DB) Backup(start func(size int64) io.Writer) (int64, error) {
	var n int64
	err := db.view(func(tx *bolt.Tx) error {
		w := start(tx.Size())
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
