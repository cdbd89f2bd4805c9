// Package storage keeps everything Tandem persists in one bbolt file:
// documents with their op logs, snapshots and comments, channel histories
// with their epochs, read receipts, the users the server has seen, and
// revoked tokens and users (revocations.go). It implements the small
// interfaces the session package declares, speaking in doc's records
// ([doc.Info], [doc.OpRecord], [doc.Snapshot], [doc.Comment],
// [doc.Message], [doc.User]); it never imports session.
//
// # Basics
//
// [Open] a file, use the DB from any number of goroutines, [DB.Close] it.
// Appends go through a group commit: [DB.AppendOp] blocks until its op is
// durable, [DB.AppendOpAsync] reports to a callback, so that a document's
// session can keep applying ops while earlier ones are being written.
// Reads ([DB.Ops], [DB.ContentAt], [DB.Head], [DB.MessagesSince], ...) run
// in read-only transactions and never wait for writes. [DB.Export] and
// [DB.Import] move one document's whole history in a versioned JSON format.
//
// # File layout
//
// Versions and offsets are 8-byte big-endian integers (be64), so cursors
// walk history in order. Each document gets a number N at creation, and
// each channel a number C with its first message (never reused); their
// entries in the per-kind buckets start with be64(N) or be64(C). One B+tree
// per kind, rather than a bucket tree per document or channel, keeps the
// pages a commit dirties, and so its fsync, few when it touches many
// documents and channels.
//
//	meta/schema                    "4"
//	docs/<id>                      be64 N, then JSON: id, title, created, epoch
//	heads/<N>                      be64 current version (number of ops); while
//	                               some of its ops are in the journal, also be64
//	                               the first such version and be64 its seq
//	journal/<be64 seq>             be64 N, be64 v, then the op as in ops/: the
//	                               newest ops of every document, in commit order
//	ops/<N><be64 v>                the op from v to v+1 with uid, user, client
//	                               and time, in a compact binary form (codec.go)
//	uids/<N><uid>                  be64 v: the uid index of the ops in ops/
//	blocks/<N><be64 v>             the ops from v on, packed: a count, then a
//	                               zstd frame of columns (block.go)
//	buids/<N><kind><key>           the block uid index: for each block holding
//	                               uids of that prefix (kind 0) or that whole uid
//	                               (kind 1), its first version (and counter range)
//	snaps/<N><be64 v>              content at v: UTF-8, or in packed history a
//	                               zstd frame of it; the document's first
//	                               snapshot is its base: older ops were compacted
//	comments/<N><comment id>       JSON doc.Comment
//	channels/<name>                be64 C, then JSON: epoch, first and last offset
//	msgs/<C><be64 offset>          be64 Unix-nano time, then JSON doc.Message
//	receipts/<len><channel><user>  be64 offset read (len: uvarint of the
//	                               channel's length, so prefixes never clash)
//	users/<id>                     JSON doc.User
//	usernames/<name>               user id
//	revoked/t<token id>            be64 Unix nanoseconds when the token expires
//	                               (0: never); dropped once that has passed
//	revoked/u<user id>             be64 Unix seconds: the user's tokens issued
//	                               at or before it are revoked
//
// An append writes its op to the journal, where the ops of one commit share
// a page whatever documents they belong to, and the document's head; the
// committer moves the journal into ops/ and uids/ in one transaction from
// time to time (journal.go). The packer then moves a document's ops older
// than its newest ones from ops/ and uids/ into blocks and the block uid
// index, a few bytes an op (pack.go). A history thus runs from its base
// through blocks, ops/ and the journal, each run starting where the one
// before ends; reads take each op from wherever their transaction finds
// it.
//
// A document's epoch is a random id made when it is created or imported,
// so that clients can tell a document from an earlier one of the same id
// (the number N does that only within one file: a restored backup reuses
// numbers). Files written before epochs existed get one per document when
// Open first sees them (meta/epochs marks the upgrade done).
//
// Deleting a document deletes its entries in every bucket in one
// transaction. A new document gets a snapshot of the empty text at version
// 0; the background snapshotter adds one every Config.SnapshotEvery ops past
// the latest, so Head replays at most about that many ops whatever the
// length of the history. In packed history the packer keeps fewer, so
// ContentAt there replays more ops, from blocks (pack.go). [CompactFile] writes a compacted copy of a data file, which bbolt
// never shrinks.
//
// # Durability
//
// One committer goroutine owns the writes. Requests from any goroutine
// queue while a commit runs; the committer then writes everything queued in
// one bbolt transaction, with one fsync, and completes each request. No
// request waits for a timer, so a lone writer waits for one commit. An
// append returns (or calls back) without error only after its transaction
// is on disk: after a crash or kill -9, every acknowledged op is in the log.
// Each request is validated inside the transaction before it writes
// anything, so one that fails (a version conflict, a duplicate uid, a
// missing document) changes nothing while the others in its transaction
// commit. Config.NoSync drops the fsync and with it every guarantee; it is
// for throwaway benchmarks only.
//
// # Concurrency
//
// Every DB method is safe for concurrent use. Requests submitted in order
// from one goroutine are committed in that order. Callbacks of the async
// appends run on the committer goroutine and must not block.
//
// # Caveats
//
// Open fails with ErrLocked when another process holds the file (bbolt's
// flock) and with ErrCorrupt when bbolt's checks reject it; it does not
// check every page, and a file damaged in the middle is found only when
// that page is read. Storage does not check that an op applies to the
// content: the session that owns the document does; Import does check.
package storage
