package storage

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/ot"
)

func TestOpValueRoundTrip(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600)
	recs := []doc.OpRecord{
		{Op: ot.Op{}},
		{Op: ot.Op{ot.Insert("a")}, UID: "u", Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Op: ot.Op{ot.Retain(3), ot.Insert("héllo 😀"), ot.Delete(2)}, UID: "c_8f2a-17", User: "ann", ClientID: "c_8f2a", Time: time.Date(2025, 1, 2, 3, 4, 5, 6, paris)},
		{Op: ot.Op{ot.Retain(ot.MaxComponentLen), ot.Delete(ot.MaxComponentLen)}, Time: time.Unix(-5, 0)},
	}
	typist := doc.NewTypist(7)
	text := ""
	for i := range 200 {
		op := typist.Next(len([]rune(text)))
		text, _ = ot.Apply(text, op)
		recs = append(recs, doc.OpRecord{Op: op, UID: string(rune('a' + i%26)), Time: time.Unix(int64(i), int64(i))})
	}
	for i, rec := range recs {
		rec.Version = i
		got, err := decodeOp(i, encodeOpValue(rec))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got.Version != i || !got.Op.Equal(rec.Op) || got.UID != rec.UID || got.User != rec.User || got.ClientID != rec.ClientID || !got.Time.Equal(rec.Time) || got.Time.IsZero() != rec.Time.IsZero() {
			t.Fatalf("record %d: got %+v, want %+v", i, got, rec)
		}
	}
}

// TestOpValueDamaged checks that every truncation and random damage of a
// value is reported as ErrCorrupt, never a panic or a wrong op that slips
// through silently as valid.
func TestOpValueDamaged(t *testing.T) {
	rec := doc.OpRecord{Op: ot.Op{ot.Retain(3), ot.Insert("héllo"), ot.Delete(2)}, UID: "u1", User: "ann", Time: time.Unix(1, 2)}
	v := encodeOpValue(rec)
	for n := range len(v) {
		if _, err := decodeOp(0, v[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("value cut to %d bytes: %v", n, err)
		}
	}
	if _, err := decodeOp(0, append(v, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatal("trailing byte accepted")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		w := append([]byte(nil), v...)
		w[r.IntN(len(w))] = byte(r.Uint32())
		rec, err := decodeOp(0, w)
		if err == nil {
			if verr := rec.Op.Validate(); verr != nil && !errors.Is(verr, ot.ErrNotCanonical) {
				t.Fatalf("damaged value %x decoded to an invalid op %v: %v", w, rec.Op, verr)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("damaged value %x: %v", w, err)
		}
	}
}

func FuzzDecodeOpValue(f *testing.F) {
	f.Add(encodeOpValue(doc.OpRecord{Op: ot.Op{ot.Retain(3), ot.Insert("héllo"), ot.Delete(2)}, UID: "u1", Time: time.Unix(1, 2)}))
	f.Add([]byte{opFormat1, 0, 0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeOp(0, v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%x: %v", v, err)
			}
			return
		}
		if len(v) > 0 && v[0] == opFormat1 {
			again, err := decodeOp(0, encodeOpValue(rec))
			if err != nil || !again.Op.Equal(rec.Op) {
				t.Fatalf("%x: re-encoding gives %v, %v", v, again.Op, err)
			}
		}
	})
}
