package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tandemhq/tandem/doc"
)

// Errors returned by this package. They are wrapped with context; test for
// them with [errors.Is].
var (
	// ErrClosed: the DB is closed, or closing, and takes no more requests.
	ErrClosed = errors.New("storage: closed")
	// ErrNotFound: the document, comment or message does not exist. It is
	// doc.ErrNotFound, so that the session can test for it.
	ErrNotFound = fmt.Errorf("storage: %w", doc.ErrNotFound)
	// ErrExists: CreateDoc or Import of a document id that already exists.
	// It wraps doc.ErrExists.
	ErrExists = fmt.Errorf("storage: %w", doc.ErrExists)
	// ErrConflict: an appended op's version or a message's offset does not
	// follow on from what is stored (a gap or a duplicate). Nothing was
	// written for that request. The error is a [*ConflictError].
	ErrConflict = errors.New("storage: version conflict")
	// ErrDuplicateUID: an appended op carries a uid the document's log
	// already holds. Nothing was written for that request. It wraps
	// doc.ErrDuplicateUID, so that the session can test for it.
	ErrDuplicateUID = fmt.Errorf("storage: %w", doc.ErrDuplicateUID)
	// ErrCompacted: the versions asked for lie before the document's
	// compaction point; their ops are gone.
	ErrCompacted = fmt.Errorf("storage: %w", doc.ErrCompacted)
	// ErrInvalid: bad input, such as an empty id, a negative version or a
	// range outside the history. Nothing was written.
	ErrInvalid = fmt.Errorf("storage: %w", doc.ErrInvalid)
	// ErrLocked: another process holds the data file.
	ErrLocked = errors.New("storage: data file is locked by another process")
	// ErrCorrupt: the data file is damaged (bad meta pages, truncated).
	ErrCorrupt = errors.New("storage: data file is corrupt")
	// ErrBadExport: Import was given a malformed or inconsistent export. It
	// is also doc.ErrInvalid: bad input, which changed nothing.
	ErrBadExport error = badExportError{}
)

// badExportError is ErrBadExport.
type badExportError struct{}

func (badExportError) Error() string        { return "storage: bad export" }
func (badExportError) Is(target error) bool { return target == doc.ErrInvalid }

// A ConflictError says where an append did not follow on: Have is the next
// version (or offset) the store expected, Got what the request carried. It
// matches [ErrConflict] under [errors.Is].
type ConflictError struct {
	// Key is the document id or the channel name.
	Key       string
	Have, Got uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("storage: conflict on %q: next is %d, got %d", e.Key, e.Have, e.Got)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Defaults for zero Config fields.
const (
	DefaultSnapshotEvery = 1000
	DefaultLockTimeout   = 3 * time.Second
	DefaultCommitGather  = 10 * time.Millisecond
)

// maxIDLen bounds document ids, channel names, user ids, comment ids and op
// uids, so that every key fits bbolt's limits with room to spare.
const maxIDLen = 1024

// Config configures a DB. The zero value is usable: every zero field gets
// its default in Open.
type Config struct {
	// NoSync skips fsync on commit. UNSAFE: a crash or power loss may lose
	// acknowledged writes or corrupt the file. For throwaway benchmarks
	// only; never for data anyone wants back.
	NoSync bool
	// SnapshotEvery is how many ops past a document's last snapshot the
	// background snapshotter writes the next one. By default,
	// DefaultSnapshotEvery (1000) ops.
	SnapshotEvery int
	// LockTimeout is how long Open waits for another process to release the
	// data file before failing with ErrLocked. By default,
	// DefaultLockTimeout (3 s); a negative value tries once without waiting.
	// Open never waits forever.
	LockTimeout time.Duration
	// Logger receives lifecycle lines (info) and background failures
	// (error). The zero Logger logs nothing.
	Logger zerolog.Logger
	// Now returns the current time, for message trimming and default
	// timestamps. By default, time.Now.
	Now func() time.Time
	// CommitGather bounds how long a commit of a busy server waits for
	// the writes its callers expect (ExpectWrites; committer.gather):
	// never longer than six times the commit before it took, and never
	// on a quiet server. By default DefaultCommitGather (10 ms); a negative
	// value turns gathering off.
	CommitGather time.Duration
	// Limits are the document limits Import checks (doc.Limits; zero
	// fields take doc's defaults). The server passes the limits its
	// sessions apply, so that every imported document can be opened and
	// edited.
	Limits doc.Limits

	// journalIdle overrides journalIdle (tests: a long pause keeps ops in
	// the journal).
	journalIdle time.Duration
	// journalMax overrides journalMax (the crash test: frequent drains).
	journalMax int
	// blockOps and packTail override defaultBlockOps and defaultPackTail
	// (tests: small blocks); noPack turns the packer off (tests of the
	// layout before it).
	blockOps, packTail int
	noPack             bool
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	switch {
	case cfg.LockTimeout == 0:
		cfg.LockTimeout = DefaultLockTimeout
	case cfg.LockTimeout < 0:
		cfg.LockTimeout = time.Nanosecond // bbolt: 0 would mean forever
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CommitGather == 0 {
		cfg.CommitGather = DefaultCommitGather
	}
	if cfg.journalIdle <= 0 {
		cfg.journalIdle = journalIdle
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.journalMax <= 0 {
		cfg.journalMax = journalMax
	}
	if cfg.blockOps <= 0 {
		cfg.blockOps = defaultBlockOps
	}
	cfg.blockOps = min(cfg.blockOps, maxBlockOps)
	if cfg.packTail <= 0 {
		cfg.packTail = defaultPackTail
	}
	return cfg
}

// DB is Tandem's store: one bbolt file. All methods are safe for concurrent
// use. Writes go through one committer goroutine (group commit); reads run
// in their own read-only transactions and never wait for writes.
type DB struct {
	bolt *bolt.DB
	path string
	cfg  Config
	log  zerolog.Logger

	commits *committer
	snaps   *snapshotter
	packs   *packer

	// compactMu serialises Compact calls, which read outside the write
	// transaction and must not interleave with one another.
	compactMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the data file at path. It fails with ErrLocked,
// naming the file, when another process holds it for longer than
// cfg.LockTimeout, and with ErrCorrupt when bbolt's checks reject the file
// (both meta pages bad, a file shorter than its meta page says, a file that
// is not a bbolt file). An existing empty file is treated as truncated. Open
// starts the committer, snapshotter and packer goroutines; Close stops
// them. The packer starts by checking every document, so that history a
// crash or an older build left unpacked is packed (pack.go).
func Open(path string, cfg Config) (*DB, error) {
	cfg = cfg.withDefaults()
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("open %s: the file is empty (truncated?); move it away to start a new store: %w", path, ErrCorrupt)
	}
	bdb, journal, err := openBolt(path, cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{
		bolt: bdb,
		path: path,
		cfg:  cfg,
		log:  cfg.Logger.With().Str("component", "storage").Logger(),
	}
	db.commits = newCommitter(db)
	db.commits.journal = journal
	db.commits.stats.Journal = journal.entries
	db.snaps = newSnapshotter(db)
	db.packs = newPacker(db)
	go db.commits.run()
	go db.snaps.run()
	go db.packs.run()
	if !cfg.noPack {
		var nums []uint64
		_ = bdb.View(func(tx *bolt.Tx) error {
			nums = allDocNums(tx)
			return nil
		})
		db.packs.notify(nums)
	}
	db.log.Info().Str("path", path).Bool("nosync", cfg.NoSync).Msg("storage opened")
	return db, nil
}

// openBolt opens the bbolt file, checks it and creates the top-level
// buckets. bbolt panics or faults on some damaged files; both are turned
// into ErrCorrupt here so that start-up reports them instead of crashing.
func openBolt(path string, cfg Config) (bdb *bolt.DB, journal journalState, err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if bdb != nil {
				_ = bdb.Close()
			}
			bdb = nil
			err = fmt.Errorf("open %s: %v: %w", path, r, ErrCorrupt)
		}
	}()
	// The freelist stays synced (NoFreelistSync false): without it bbolt
	// rebuilds the freelist at open by walking every page on a goroutine of
	// its own, where a damaged page panics beyond our recover.
	bdb, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      cfg.LockTimeout,
		NoSync:       cfg.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, journal, fmt.Errorf("open %s: another process holds it (waited %s; is a server running on this data?): %w", path, cfg.LockTimeout, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, journal, fmt.Errorf("open %s: not a valid data file (%v): %w", path, err, ErrCorrupt)
	case err != nil:
		if _, ok := errors.AsType[*fs.PathError](err); ok {
			return nil, journal, fmt.Errorf("open %s: %w", path, err) // no such file, permission, a directory...
		}
		return nil, journal, fmt.Errorf("open %s: %v: %w", path, err, ErrCorrupt) // such as "file size too small"
	}
	fi, err := os.Stat(path)
	if err != nil {
		_ = bdb.Close()
		return nil, journal, fmt.Errorf("open %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		if size := tx.Size(); size > fi.Size() {
			return fmt.Errorf("the file holds %d bytes but its meta page says %d (truncated): %w", fi.Size(), size, ErrCorrupt)
		}
		for _, name := range topBuckets {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return fmt.Errorf("bucket %s: %v: %w", name, err, ErrCorrupt)
			}
			if string(name) == string(bucketMeta) {
				// Schema 2 is schema 3 without a journal (every head record
				// in its short form), and schema 3 is schema 4 without
				// blocks; the loop creates the buckets.
				if v := b.Get(keySchema); v != nil && string(v) != schemaVersion && string(v) != "2" && string(v) != "3" {
					return fmt.Errorf("schema version %q, this build reads %q: %w", v, schemaVersion, ErrCorrupt)
				}
				if err := b.Put(keySchema, []byte(schemaVersion)); err != nil {
					return err
				}
			}
		}
		if err := upgradeEpochs(tx); err != nil {
			return err
		}
		journal, err = loadJournal(tx)
		return err
	})
	if err != nil {
		_ = bdb.Close()
		return nil, journal, fmt.Errorf("open %s: %w", path, err)
	}
	return bdb, journal, nil
}

// Path returns the data file's path.
func (db *DB) Path() string { return db.path }

// Close stops the snapshotter (finishing the snapshots it has noticed),
// commits every write already queued and completes its request, then closes
// the file. Requests made during or after Close fail with ErrClosed. Close
// is idempotent; later calls return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		// Order: the snapshotter and the packer submit writes to the
		// committer, so they stop first; the committer then drains its
		// queue; bbolt last.
		db.snaps.stop()
		db.packs.stop()
		db.commits.stop()
		db.closeErr = db.bolt.Close()
		db.log.Info().Str("path", db.path).Msg("storage closed")
	})
	return db.closeErr
}

// view runs fn in a read-only transaction, mapping a closed bbolt to
// ErrClosed.
func (db *DB) view(fn func(tx *bolt.Tx) error) error {
	err := db.bolt.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// update submits fn to the committer and waits for its commit. fn must
// follow the writeFunc contract.
func (db *DB) update(ctx context.Context, fn writeFunc) error {
	ch := make(chan error, 1)
	db.commits.submit(fn, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w (the write may still commit)", ctx.Err())
	}
}

// checkID validates an id used as a key: non-empty, at most maxIDLen bytes,
// valid UTF-8.
func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty %s: %w", what, ErrInvalid)
	case len(id) > maxIDLen:
		return fmt.Errorf("%s of %d bytes, at most %d: %w", what, len(id), maxIDLen, ErrInvalid)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8: %w", what, ErrInvalid)
	}
	return nil
}

// randomID returns 16 random hex digits.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// corrupt reports a stored value that does not decode.
func corrupt(what string, err error) error {
	return fmt.Errorf("%s: %v: %w", what, err, ErrCorrupt)
}
