package storage

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

// Export format identification.
const (
	ExportFormat        = "tandem-export"
	ExportFormatVersion = 1
)

// exportFile is the export format, version 1: one document's whole stored
// history. Ops run from Base (0 unless the document was compacted) to
// Doc.Version; Snapshots starts with one at Base.
type exportFile struct {
	Format        string         `json:"format"`
	FormatVersion int            `json:"format_version"`
	ExportedAt    time.Time      `json:"exported_at"`
	Doc           doc.Info       `json:"doc"`
	Base          int            `json:"base"`
	Snapshots     []doc.Snapshot `json:"snapshots"`
	Ops           []doc.OpRecord `json:"ops"`
	Comments      []doc.Comment  `json:"comments"`
}

// Export writes document docID's whole stored history to w as JSON in the
// tandem-export format, version 1: metadata, snapshots, every op with its
// author and time, and comments, one item per line. It reads one consistent
// view of the document.
func (db *DB) Export(docID string, w io.Writer) error {
	f := exportFile{Format: ExportFormat, FormatVersion: ExportFormatVersion, ExportedAt: db.cfg.Now().UTC()}
	err := db.view(func(tx *bolt.Tx) error {
		d, err := mustDoc(tx, docID)
		if err != nil {
			return err
		}
		if f.Doc, err = d.fullInfo(); err != nil {
			return err
		}
		f.Doc.Epoch = "" // an import makes a new incarnation, with its own
		if f.Base, err = d.base(); err != nil {
			return err
		}
		snaps := tx.Bucket(bucketSnaps)
		for _, k := range d.keys(bucketSnaps, -1) {
			ver, _ := d.version(k)
			content, err := snapContent(snaps.Get(k))
			if err != nil {
				return corrupt(fmt.Sprintf("doc %q snapshot v%d", docID, ver), err)
			}
			f.Snapshots = append(f.Snapshots, doc.Snapshot{Version: ver, Content: content})
		}
		if f.Ops, err = d.readOps(f.Base, f.Doc.Version); err != nil {
			return err
		}
		f.Comments, err = d.sortedComments()
		return err
	})
	if err != nil {
		return fmt.Errorf("export %q: %w", docID, err)
	}
	if err := writeExport(w, &f); err != nil {
		return fmt.Errorf("export %q: %w", docID, err)
	}
	return nil
}

// writeExport writes f as one JSON object with one snapshot, op or comment
// per line, so that an export reads (and diffs) well.
func writeExport(w io.Writer, f *exportFile) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	head, err := json.Marshal(struct {
		Format        string    `json:"format"`
		FormatVersion int       `json:"format_version"`
		ExportedAt    time.Time `json:"exported_at"`
		Doc           doc.Info  `json:"doc"`
		Base          int       `json:"base"`
	}{f.Format, f.FormatVersion, f.ExportedAt, f.Doc, f.Base})
	if err != nil {
		return err
	}
	// bufio.Writer keeps the first error and Flush returns it, so the
	// single writes are not checked.
	_, _ = bw.Write(head[:len(head)-1]) // without the closing brace
	if err := writeList(bw, "snapshots", f.Snapshots); err != nil {
		return err
	}
	if err := writeList(bw, "ops", f.Ops); err != nil {
		return err
	}
	if err := writeList(bw, "comments", f.Comments); err != nil {
		return err
	}
	_, _ = bw.WriteString("}\n")
	return bw.Flush() // bufio keeps the first write error
}

// writeList writes, unchecked as in writeExport, `,"name":[` and the items, one per line, and `]`.
func writeList[T any](bw *bufio.Writer, name string, items []T) error {
	_, _ = fmt.Fprintf(bw, ",\n%q:[", name)
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			return err
		}
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_ = bw.WriteByte('\n')
		_, _ = bw.Write(b)
	}
	if len(items) > 0 {
		_ = bw.WriteByte('\n')
	}
	_ = bw.WriteByte(']')
	return nil
}

// Import reads an export (tandem-export, version 1) from r and creates the
// document it holds, with the same id, metadata, version, content at every
// version, snapshots, ops and comments; it also writes the automatic
// snapshots the history lacks. It validates everything first, replaying
// every op and checking every snapshot against the replay, and fails with
// ErrBadExport (or ErrExists when the id is taken) having written nothing.
// The export must keep the limits every other path keeps: the id passes
// doc.ValidID, the title doc.ValidTitle, the text stays within
// Config.Limits.MaxLen code points at every version, and the comments
// within MaxComments and MaxCommentBytes each. The document gets a new
// epoch (an export's epoch, if any, is ignored). The write is one
// transaction.
func (db *DB) Import(r io.Reader) (doc.Info, error) {
	var f exportFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return doc.Info{}, fmt.Errorf("import: not a readable export: %w: %w", err, ErrBadExport)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return doc.Info{}, fmt.Errorf("import: data after the export's end: %w", ErrBadExport)
	}
	snaps, verr := f.validate(db.cfg.SnapshotEvery, db.cfg.Limits)
	if err := verr; err != nil {
		return doc.Info{}, fmt.Errorf("import %q: %w", f.Doc.ID, err)
	}
	if _, err := db.GetDoc(f.Doc.ID); !errors.Is(err, ErrNotFound) {
		if err == nil {
			err = ErrExists
		}
		return doc.Info{}, fmt.Errorf("import %q: %w", f.Doc.ID, err)
	}

	f.Doc.Epoch = randomID()
	si := storedInfo{ID: f.Doc.ID, Title: f.Doc.Title, Created: f.Doc.Created, Epoch: f.Doc.Epoch}
	var err error
	ops := make([][]byte, len(f.Ops))
	for i := range f.Ops {
		ops[i] = encodeOpValue(f.Ops[i])
	}
	stored := make([]storedSnap, len(snaps))
	for i, sn := range snaps {
		stored[i] = storedSnap{version: sn.Version, val: snapValue(sn.Content)}
	}
	comments := make([][]byte, len(f.Comments))
	for i := range f.Comments {
		if comments[i], err = json.Marshal(f.Comments[i]); err != nil {
			return doc.Info{}, err
		}
	}
	err = db.update(context.Background(), func(w *writeTx) error {
		if w.tx.Bucket(bucketDocs).Get([]byte(f.Doc.ID)) != nil {
			return fmt.Errorf("import %q: %w", f.Doc.ID, ErrExists)
		}
		d, err := createDoc(w.tx, si, stored, f.Doc.Version)
		if err != nil {
			return abort(err)
		}
		w.packDue = append(w.packDue, d.num)
		ob, ub, cb := w.tx.Bucket(bucketOps), w.tx.Bucket(bucketUIDs), w.tx.Bucket(bucketComments)
		for i, rec := range f.Ops {
			if err := ob.Put(d.vkey(rec.Version), ops[i]); err != nil {
				return abort(err)
			}
			if rec.UID != "" {
				if err := ub.Put(d.skey(rec.UID), be64(uint64(rec.Version))); err != nil {
					return abort(err)
				}
			}
		}
		for i, c := range f.Comments {
			if err := cb.Put(d.skey(c.ID), comments[i]); err != nil {
				return abort(err)
			}
		}
		return nil
	})
	if err != nil {
		return doc.Info{}, err
	}
	db.log.Info().Str("doc", f.Doc.ID).Int("version", f.Doc.Version).Msg("imported")
	return f.Doc, nil
}

// validate checks an export for consistency and limits by replaying it,
// and returns the snapshots to store: the export's, plus one every `every`
// ops past the last where the export has none. Every error wraps
// ErrBadExport.
func (f *exportFile) validate(every int, lim doc.Limits) ([]doc.Snapshot, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, ErrBadExport)...)
	}
	switch {
	case f.Format != ExportFormat:
		return nil, bad("not a tandem export (format %q, want %q)", f.Format, ExportFormat)
	case f.FormatVersion != ExportFormatVersion:
		return nil, bad("format_version %d, this build reads %d", f.FormatVersion, ExportFormatVersion)
	}
	if err := doc.ValidID(f.Doc.ID); err != nil {
		return nil, bad("%v", err)
	}
	if err := doc.ValidTitle(f.Doc.Title); err != nil {
		return nil, bad("%v", err)
	}
	if len(f.Comments) > lim.MaxComments {
		return nil, bad("%d comments, at most %d", len(f.Comments), lim.MaxComments)
	}
	tooLong := func(v, n int) error {
		return bad("the text at v%d has %d code points, at most %d", v, n, lim.MaxLen)
	}
	head := f.Doc.Version
	switch {
	case f.Base < 0 || head < f.Base:
		return nil, bad("base v%d and version v%d", f.Base, head)
	case len(f.Ops) != head-f.Base:
		return nil, bad("%d ops from base v%d, but the document is at v%d", len(f.Ops), f.Base, head)
	case len(f.Snapshots) == 0 || f.Snapshots[0].Version != f.Base:
		return nil, bad("no snapshot at base v%d", f.Base)
	}
	for i, s := range f.Snapshots {
		switch {
		case i > 0 && s.Version <= f.Snapshots[i-1].Version:
			return nil, bad("snapshot v%d after v%d: not in order", s.Version, f.Snapshots[i-1].Version)
		case s.Version > head:
			return nil, bad("snapshot v%d past the document's version v%d", s.Version, head)
		case !utf8.ValidString(s.Content):
			return nil, bad("snapshot v%d is not valid UTF-8", s.Version)
		}
		if n := utf8.RuneCountInString(s.Content); n > lim.MaxLen {
			return nil, tooLong(s.Version, n)
		}
	}
	uids := make(map[string]int, len(f.Ops))
	for i, rec := range f.Ops {
		want := f.Base + i
		switch {
		case rec.Version != want:
			return nil, bad("version gap: op %d has version v%d, want v%d", i, rec.Version, want)
		case rec.Op == nil:
			return nil, bad("op v%d has no op", rec.Version)
		}
		if err := rec.Op.Validate(); err != nil {
			return nil, bad("op v%d: %v", rec.Version, err)
		}
		if rec.UID == "" {
			continue
		}
		if err := checkID("uid", rec.UID); err != nil {
			return nil, bad("op v%d: %v", rec.Version, err)
		}
		if prev, ok := uids[rec.UID]; ok {
			return nil, bad("ops v%d and v%d share uid %q", prev, rec.Version, rec.UID)
		}
		uids[rec.UID] = rec.Version
	}

	// Comments: check them before the replay, which measures the text at
	// their versions.
	ids := make(map[string]bool, len(f.Comments))
	lens := make(map[int]int) // text length at the versions comments sit at
	for _, c := range f.Comments {
		if err := checkID("comment id", c.ID); err != nil {
			return nil, bad("%v", err)
		}
		switch {
		case ids[c.ID]:
			return nil, bad("two comments with id %q", c.ID)
		case c.Version < f.Base || c.Version > head:
			return nil, bad("comment %q at v%d, history is [v%d, v%d]", c.ID, c.Version, f.Base, head)
		case c.Range.From < 0 || c.Range.To < c.Range.From:
			return nil, bad("comment %q has range [%d, %d)", c.ID, c.Range.From, c.Range.To)
		case len(c.Text) > lim.MaxCommentBytes:
			return nil, bad("comment %q has %d bytes of text, at most %d", c.ID, len(c.Text), lim.MaxCommentBytes)
		}
		ids[c.ID] = true
		lens[c.Version] = -1
	}

	// Replay, checking the snapshots and adding the missing ones.
	out := []doc.Snapshot{f.Snapshots[0]}
	next := 1 // next export snapshot to check
	rope := doc.NewRope(f.Snapshots[0].Content)
	if _, ok := lens[f.Base]; ok {
		lens[f.Base] = rope.Len()
	}
	last := f.Base
	for _, rec := range f.Ops {
		if err := ot.ApplyTo(rope, rec.Op); err != nil {
			return nil, bad("op v%d does not apply to the content at v%d: %v", rec.Version, rec.Version, err)
		}
		v := rec.Version + 1
		if n := rope.Len(); n > lim.MaxLen {
			return nil, tooLong(v, n)
		}
		if _, ok := lens[v]; ok {
			lens[v] = rope.Len()
		}
		switch {
		case next < len(f.Snapshots) && f.Snapshots[next].Version == v:
			if s := rope.String(); s != f.Snapshots[next].Content {
				return nil, bad("snapshot v%d does not match the content the ops give", v)
			}
			out = append(out, f.Snapshots[next])
			next++
			last = v
		case v-last >= every:
			out = append(out, doc.Snapshot{Version: v, Content: rope.String()})
			last = v
		}
	}
	for _, c := range f.Comments {
		if n := lens[c.Version]; c.Range.To > n {
			return nil, bad("comment %q range [%d, %d) past the end of the text at v%d (%d code points)", c.ID, c.Range.From, c.Range.To, c.Version, n)
		}
	}
	return slices.Clip(out), nil
}

// ExportData is one document's stored history as the export format holds
// it, for other stores (cluster mode's natsstore) that read and write the
// same format: the document, its compaction point, snapshots (the first at
// Base), every op from Base and the comments.
type ExportData struct {
	Doc       doc.Info
	Base      int
	Snapshots []doc.Snapshot
	Ops       []doc.OpRecord
	Comments  []doc.Comment
}

// WriteExport writes d in the tandem-export format, version 1, exactly as
// DB.Export does (the epoch is left out: an import makes its own).
func WriteExport(w io.Writer, d ExportData, now time.Time) error {
	info := d.Doc
	info.Epoch = ""
	return writeExport(w, &exportFile{Format: ExportFormat, FormatVersion: ExportFormatVersion, ExportedAt: now.UTC(),
		Doc: info, Base: d.Base, Snapshots: d.Snapshots, Ops: d.Ops, Comments: d.Comments})
}

// ReadExport reads an export from r and validates it as DB.Import does
// (replaying every op within lim), returning it and the snapshots to
// store: the export's and one every `every` ops where it has none. Errors
// wrap ErrBadExport.
func ReadExport(r io.Reader, every int, lim doc.Limits) (ExportData, []doc.Snapshot, error) {
	var f exportFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return ExportData{}, nil, fmt.Errorf("import: not a readable export: %w: %w", err, ErrBadExport)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ExportData{}, nil, fmt.Errorf("import: data after the export's end: %w", ErrBadExport)
	}
	if every <= 0 {
		every = 1000
	}
	snaps, err := f.validate(every, lim.WithDefaults())
	if err != nil {
		return ExportData{}, nil, fmt.Errorf("import %q: %w", f.Doc.ID, err)
	}
	return ExportData{Doc: f.Doc, Base: f.Base, Snapshots: f.Snapshots, Ops: f.Ops, Comments: f.Comments}, snaps, nil
}
