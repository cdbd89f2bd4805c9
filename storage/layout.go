package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
)

// Bucket and key names. See doc.go for the layout.
var (
	bucketMeta      = []byte("meta")
	bucketDocs      = []byte("docs")
	bucketHeads     = []byte("heads")
	bucketOps       = []byte("ops")
	bucketUIDs      = []byte("uids")
	bucketSnaps     = []byte("snaps")
	bucketComments  = []byte("comments")
	bucketChannels  = []byte("channels")
	bucketMsgs      = []byte("msgs")
	bucketReceipts  = []byte("receipts")
	bucketUsers     = []byte("users")
	bucketUserNames = []byte("usernames")

	topBuckets = [][]byte{
		bucketMeta, bucketDocs, bucketHeads, bucketOps, bucketUIDs, bucketJournal, bucketBlocks, bucketBlockUIDs,
		bucketSnaps, bucketComments, bucketChannels, bucketMsgs, bucketReceipts, bucketUsers, bucketUserNames, bucketRevoked,
	}

	keySchema = []byte("schema")
	// keyEpochs marks a file whose every document has an epoch.
	keyEpochs = []byte("epochs")
)

// schemaVersion is the layout version stored under meta/schema. Version 1
// (bucket trees per document and channel, JSON op values) was never
// released; a file holding it fails Open. Version 2 had no journal, version
// 3 no blocks (every op one value in ops/, every uid in uids/, snapshots
// always plain text); Open upgrades either in place: it adds the buckets,
// and the packer then packs every document's history older than its live
// tail in the background, a few blocks a transaction (pack.go). There is no
// way back: a build that reads version 2 or 3 refuses a file once this one
// has opened it.
// The revoked bucket was added within version 3: Open creates it in a file
// that lacks it, and a build that predates it ignores it.
const schemaVersion = "4"

// be64 returns v as an 8-byte big-endian key, so cursors walk in order.
func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// unbe64 decodes an 8-byte big-endian key; ok is false for any other length.
func unbe64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// storedInfo is the JSON part of docs/<id>, after the document's number.
// The version is not in it: heads/<num> holds it, so that an append does
// not rewrite the metadata.
type storedInfo struct {
	ID      string    `json:"id"`
	Title   string    `json:"title,omitempty"`
	Created time.Time `json:"created"`
	// Epoch names the document's incarnation (doc.Info.Epoch). Records
	// written before epochs existed get one when Open upgrades the file
	// (upgradeEpochs).
	Epoch string `json:"epoch,omitempty"`
}

// docRef is a document's place in the buckets, within one transaction.
//
// Every document gets a number when it is created, from the docs bucket's
// sequence, and never reused: the per-document keys of the flat buckets
// (heads, ops, uids, snaps, comments) start with it. Keeping one B+tree per
// kind rather than one bucket tree per document means that a commit
// touching many documents dirties fewer pages (each fsync costs by the
// page). The number also tells a document from an earlier one of the same
// id that was deleted, so that background work started on the old one does
// not land on the new one.
type docRef struct {
	tx  *bolt.Tx
	id  string
	num uint64
	pfx []byte // be64(num)
}

// lookupDoc finds document id, or returns nil.
func lookupDoc(tx *bolt.Tx, id string) (*docRef, error) {
	v := tx.Bucket(bucketDocs).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	if len(v) < 8 {
		return nil, corrupt(fmt.Sprintf("doc %q", id), fmt.Errorf("%d bytes", len(v)))
	}
	num := binary.BigEndian.Uint64(v)
	return &docRef{tx: tx, id: id, num: num, pfx: be64(num)}, nil
}

// mustDoc finds document id or returns an ErrNotFound error.
func mustDoc(tx *bolt.Tx, id string) (*docRef, error) {
	d, err := lookupDoc(tx, id)
	if err == nil && d == nil {
		err = fmt.Errorf("doc %q: %w", id, ErrNotFound)
	}
	return d, err
}

// viewDoc runs fn in a read transaction with document docID and its
// current version, or fails with ErrNotFound.
func (db *DB) viewDoc(docID string, fn func(tx *bolt.Tx, d *docRef, head int) error) error {
	return db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, docID)
		if err != nil {
			return err
		}
		head, err := d.head()
		if err != nil {
			return err
		}
		return fn(tx, d, head)
	})
}

// storedSnap is a snapshot in its stored form (snapValue).
type storedSnap struct {
	version int
	val     []byte
}

// createDoc writes a new document: its metadata, snapshots and head. The
// caller checked that the id is free; info.Epoch must be set. Errors are
// bbolt's (an abort).
func createDoc(tx *bolt.Tx, info storedInfo, snaps []storedSnap, head int) (*docRef, error) {
	docs := tx.Bucket(bucketDocs)
	num, err := docs.NextSequence()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	if err := docs.Put([]byte(info.ID), append(be64(num), js...)); err != nil {
		return nil, err
	}
	d := &docRef{tx: tx, id: info.ID, num: num, pfx: be64(num)}
	for _, s := range snaps {
		if err := tx.Bucket(bucketSnaps).Put(d.vkey(s.version), s.val); err != nil {
			return nil, err
		}
	}
	return d, d.setHead(head)
}

// vkey returns the key of version (or offset) v of this document.
func (d *docRef) vkey(v int) []byte {
	k := make([]byte, 16)
	copy(k, d.pfx)
	binary.BigEndian.PutUint64(k[8:], uint64(v))
	return k
}

// skey returns the key of a string (uid, comment id) of this document.
func (d *docRef) skey(s string) []byte {
	k := make([]byte, 8, 8+len(s))
	copy(k, d.pfx)
	return append(k, s...)
}

// version decodes the version part of a key of this document.
func (d *docRef) version(k []byte) (int, bool) {
	if len(k) != 16 || !bytes.HasPrefix(k, d.pfx) {
		return 0, false
	}
	return int(binary.BigEndian.Uint64(k[8:])), true
}

// info decodes the document's metadata.
func (d *docRef) info() (storedInfo, error) {
	var si storedInfo
	v := d.tx.Bucket(bucketDocs).Get([]byte(d.id))
	if len(v) < 8 {
		return si, corrupt(fmt.Sprintf("doc %q", d.id), fmt.Errorf("%d bytes", len(v)))
	}
	if err := json.Unmarshal(v[8:], &si); err != nil {
		return si, corrupt(fmt.Sprintf("doc %q info", d.id), err)
	}
	return si, nil
}

// fullInfo returns the metadata with the current version.
func (d *docRef) fullInfo() (doc.Info, error) {
	si, err := d.info()
	if err != nil {
		return doc.Info{}, err
	}
	head, err := d.head()
	if err != nil {
		return doc.Info{}, err
	}
	return doc.Info{ID: si.ID, Title: si.Title, Created: si.Created, Version: head, Epoch: si.Epoch}, nil
}

// head returns the document's current version.
func (d *docRef) head() (int, error) {
	h, err := d.headRec()
	return h.Head, err
}

// headRec returns the document's head record: its version and where its
// ops are (see journal.go).
func (d *docRef) headRec() (headRec, error) {
	h, ok := decodeHeadRec(d.tx.Bucket(bucketHeads).Get(d.pfx))
	if !ok {
		return h, corrupt(fmt.Sprintf("doc %q head", d.id), fmt.Errorf("missing or malformed"))
	}
	return h, nil
}

// setHead stores the document's current version, every op in the log.
func (d *docRef) setHead(v int) error {
	return d.setHeadRec(headRec{Head: v, Indexed: v})
}

// setHeadRec stores the document's head record.
func (d *docRef) setHeadRec(h headRec) error {
	return d.tx.Bucket(bucketHeads).Put(d.pfx, h.encode())
}

// base returns the version of the document's oldest snapshot. Every version
// from base to head can be rebuilt; ops before base were compacted away.
func (d *docRef) base() (int, error) {
	c := d.tx.Bucket(bucketSnaps).Cursor()
	k, _ := c.Seek(d.pfx)
	v, ok := d.version(k)
	if !ok {
		return 0, corrupt(fmt.Sprintf("doc %q snapshots", d.id), fmt.Errorf("none"))
	}
	return v, nil
}

// snapAtOrBelow returns the document's latest snapshot at or below version
// v (math.MaxInt: the latest of all), or ok false when there is none. The
// content is as stored: decode it with snapContent.
func (d *docRef) snapAtOrBelow(v int) (ver int, content []byte, ok bool) {
	c := d.tx.Bucket(bucketSnaps).Cursor()
	k, val := c.Seek(d.vkey(v))
	switch kv, mine := d.version(k); {
	case k == nil:
		k, val = c.Last()
	case !mine || kv > v:
		k, val = c.Prev()
	}
	ver, ok = d.version(k)
	return ver, val, ok
}

// lastSnap returns the document's latest snapshot, decoded.
func (d *docRef) lastSnap() (int, string, error) {
	ver, v, ok := d.snapAtOrBelow(math.MaxInt)
	if !ok {
		return 0, "", corrupt(fmt.Sprintf("doc %q snapshots", d.id), fmt.Errorf("none"))
	}
	content, err := snapContent(v)
	if err != nil {
		return 0, "", corrupt(fmt.Sprintf("doc %q snapshot v%d", d.id, ver), err)
	}
	return ver, content, nil
}

// readOps reads ops [from, to), from the blocks, the op log and then the
// journal, checking that they are all there.
func (d *docRef) readOps(from, to int) ([]doc.OpRecord, error) {
	if from >= to {
		return nil, nil
	}
	h, err := d.headRec()
	if err != nil {
		return nil, err
	}
	out := make([]doc.OpRecord, 0, to-from)
	want := from
	if from < h.Indexed { // else every op asked for is in the journal
		end, err := d.packedEnd()
		if err != nil {
			return nil, err
		}
		if want < end {
			if out, err = d.readBlocks(out, want, min(to, end)); err != nil {
				return nil, err
			}
			want = min(to, end)
		}
	}
	if want < min(to, h.Indexed) {
		c := d.tx.Bucket(bucketOps).Cursor()
		for k, v := c.Seek(d.vkey(want)); want < min(to, h.Indexed); k, v = c.Next() {
			ver, ok := d.version(k)
			if !ok || ver != want {
				return nil, corrupt(fmt.Sprintf("doc %q op log", d.id), fmt.Errorf("want v%d, found %x", want, k))
			}
			rec, err := decodeOp(ver, v)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
			want++
		}
	}
	err = d.journaled(h, want, to, func(ver int, val []byte) error {
		rec, err := decodeOp(ver, val)
		out = append(out, rec)
		return err
	})
	if err == nil && len(out) != to-from {
		err = corrupt(fmt.Sprintf("doc %q op log", d.id), fmt.Errorf("read %d ops of [%d, %d) at v%d", len(out), from, to, h.Head))
	}
	return out, err
}

// keys returns the document's keys in bucket, or only those below version
// before when before >= 0 (for version-keyed buckets).
func (d *docRef) keys(bucket []byte, before int) [][]byte {
	var out [][]byte
	c := d.tx.Bucket(bucket).Cursor()
	for k, _ := c.Seek(d.pfx); k != nil && bytes.HasPrefix(k, d.pfx); k, _ = c.Next() {
		if before >= 0 {
			if v, ok := d.version(k); !ok || v >= before {
				break
			}
		}
		out = append(out, k)
	}
	return out
}

// comments decodes the document's comments, in id order.
func (d *docRef) comments() ([]doc.Comment, error) {
	var out []doc.Comment
	c := d.tx.Bucket(bucketComments).Cursor()
	for k, v := c.Seek(d.pfx); k != nil && bytes.HasPrefix(k, d.pfx); k, v = c.Next() {
		var cm doc.Comment
		if err := json.Unmarshal(v, &cm); err != nil {
			return nil, corrupt(fmt.Sprintf("doc %q comment %q", d.id, k[8:]), err)
		}
		out = append(out, cm)
	}
	return out, nil
}

// delete removes the document and everything attached to it.
func (d *docRef) delete() error {
	for _, b := range [][]byte{bucketOps, bucketUIDs, bucketBlocks, bucketBlockUIDs, bucketSnaps, bucketComments} {
		bk := d.tx.Bucket(b)
		for _, k := range d.keys(b, -1) {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
	}
	if err := d.tx.Bucket(bucketHeads).Delete(d.pfx); err != nil {
		return err
	}
	return d.tx.Bucket(bucketDocs).Delete([]byte(d.id))
}

// upgradeEpochs gives an epoch to every document stored without one (files
// written before epochs existed), once: meta/epochs marks it done. Every
// document created since has one from its creation. Errors abort Open.
func upgradeEpochs(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyEpochs) != nil {
		return nil
	}
	docs := tx.Bucket(bucketDocs)
	type rec struct{ k, v []byte }
	var todo []rec
	err := docs.ForEach(func(k, v []byte) error {
		if len(v) < 8 {
			return corrupt(fmt.Sprintf("doc %q", k), fmt.Errorf("%d bytes", len(v)))
		}
		var si storedInfo
		if err := json.Unmarshal(v[8:], &si); err != nil {
			return corrupt(fmt.Sprintf("doc %q info", k), err)
		}
		if si.Epoch != "" {
			return nil
		}
		si.Epoch = randomID()
		js, err := json.Marshal(si)
		if err != nil {
			return err
		}
		todo = append(todo, rec{append([]byte(nil), k...), append(append([]byte(nil), v[:8]...), js...)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range todo { // bbolt forbids writes during ForEach
		if err := docs.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return meta.Put(keyEpochs, []byte("1"))
}
