package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// CompactStats describes what CompactFile did.
type CompactStats struct {
	// Before and After are the sizes in bytes of the data file and of its
	// compacted copy.
	Before, After int64
	// PackedOps is the number of ops packed into blocks on the way.
	PackedOps uint64
}

// compactTxMax bounds the data one transaction of the copy writes, so that
// a large file is copied in several commits rather than held in memory.
const compactTxMax = 64 << 20

// CompactFile writes a compacted copy of the data file src to dst, which
// must not exist; src is left as it was, save for the packing below. bbolt
// never gives back the pages it frees (its file only grows): the copy holds
// only the pages in use, each as full as it goes, and ends at its last page.
// With dst equal to src, the copy is written beside src and renamed over it
// while src is still locked, so that no server can start on src meanwhile.
//
// It opens src as Open does (so it fails with ErrLocked while a server
// holds it, and upgrades an older layout), moves the journal into the op
// log and, as no session is live, packs every document's whole op log into
// blocks, its live tail too; then it copies every bucket with bbolt's
// Compact. A server started on the copy packs its new ops as usual.
func CompactFile(src, dst string, cfg Config) (CompactStats, error) {
	var st CompactStats
	final := dst
	if dst == src {
		dst = filepath.Join(filepath.Dir(src), "."+filepath.Base(src)+".compact-"+randomID())
	}
	if _, err := os.Stat(dst); err == nil {
		return st, fmt.Errorf("compact %s: %s exists: %w", src, dst, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("compact %s: %w", src, err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return st, fmt.Errorf("compact: %w", err)
	}
	st.Before = fi.Size()
	db, err := Open(src, cfg)
	if err != nil {
		return st, err
	}
	defer db.Close()
	if st.PackedOps, err = db.packAll(); err != nil {
		return st, fmt.Errorf("compact %s: %w", src, err)
	}

	out, err := bolt.Open(dst, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, Timeout: db.cfg.LockTimeout})
	if err != nil {
		return st, fmt.Errorf("compact into %s: %w", dst, err)
	}
	err = bolt.Compact(out, db.bolt, compactTxMax)
	var size int64
	if err == nil {
		err = out.View(func(tx *bolt.Tx) error {
			size = tx.Size()
			return nil
		})
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = truncateSync(dst, size)
	}
	if err == nil && final != dst {
		if err = os.Rename(dst, final); err == nil {
			err = syncDir(final)
		}
	}
	if err != nil {
		_ = os.Remove(dst)
		return st, fmt.Errorf("compact %s into %s: %w", src, dst, err)
	}
	st.After = size
	return st, db.Close()
}

// packAll moves the journal into the op log, lets the background work
// settle and packs every document's op log whole. It returns how many ops
// it packed.
func (db *DB) packAll() (uint64, error) {
	if err := db.update(context.Background(), func(w *writeTx) error { return abort(w.drainJournal()) }); err != nil {
		return 0, err
	}
	db.snaps.waitIdle()
	db.packs.waitIdle()
	if db.cfg.noPack {
		return 0, nil // tests of the layout before blocks
	}
	var nums []uint64
	if err := db.view(func(tx *bolt.Tx) error {
		nums = allDocNums(tx)
		return nil
	}); err != nil {
		return 0, err
	}
	var packed uint64
	for _, n := range nums {
		k, err := db.packDoc(n, true, func() bool { return false })
		packed += uint64(k)
		if err != nil {
			return packed, err
		}
	}
	return packed + db.Stats().PackedOps, nil
}

// truncateSync cuts the file at path to size bytes (bbolt grows its file
// ahead of its pages) and makes that durable with its directory entry.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(path)
}

// syncDir makes the directory entry of path durable.
func syncDir(path string) error {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
