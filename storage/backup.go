package storage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole data file while the store
// keeps serving: it calls start with the copy's size in bytes, then writes
// exactly that many bytes to the writer start returns.
//
// The copy is the state of one read transaction, so it never waits for
// writes; ops still in the journal are in the copy's journal, where Open
// finds them. The read transaction lasts only as long as copying the file
// into a temporary file beside it: a slow or stalled reader of the backup
// then holds that file, never the transaction (a long read transaction
// keeps the next commit that grows the file waiting for it, and with it
// every write). The temporary file, which needs as much free space as the
// data file, is unlinked as soon as it is open where the system allows it
// (so a crash leaves nothing behind) and removed before Backup returns
// otherwise. A failure before start is called is returned without calling
// start. A backup is restored by putting it in place of the data file of a
// stopped server.
func (db *DB) Backup(start func(size int64) io.Writer) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(db.path), "."+filepath.Base(db.path)+".backup-*")
	if err != nil {
		return 0, fmt.Errorf("backup: temporary copy: %w", err)
	}
	name := f.Name()
	unlinked := os.Remove(name) == nil // an open file stays readable on Unix
	defer func() {
		_ = f.Close()
		if !unlinked {
			_ = os.Remove(name)
		}
	}()
	var size int64
	err = db.view(func(tx *bolt.Tx) error {
		size = tx.Size()
		_, err := tx.WriteTo(f)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("backup: temporary copy: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("backup: temporary copy: %w", err)
	}
	// Neither side offers io.Copy a shortcut (WriteTo, ReadFrom), so the
	// copy reaches the writer in chunks of 32 KiB: a writer that bounds the
	// time of each chunk (the HTTP API's) sees every one.
	w := struct{ io.Writer }{start(size)}
	n, err := io.Copy(w, &io.LimitedReader{R: f, N: size})
	if err == nil && n != size {
		err = fmt.Errorf("backup: the temporary copy ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	return n, err
}
