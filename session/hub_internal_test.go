package session

import (
	"maps"
	"testing"
)

// TestTrimReceipts: receipts that encode to more than the budget keep the
// highest offsets that fit, and the size reported is what they take.
func TestTrimReceipts(t *testing.T) {
	many := map[string]uint64{}
	for i := range 100 {
		many[string(rune('a'+i%26))+string(rune('a'+i/26))] = uint64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		in     map[string]uint64
		budget int
		want   map[string]uint64
	}{
		// nil from storage: an empty map, never null on the wire
		{"none", nil, 100, map[string]uint64{}},
		// fits: unchanged
		{"fits", map[string]uint64{"u1": 5, "u2": 7}, 100, map[string]uint64{"u1": 5, "u2": 7}},
		// `"u1":5,` is 7 bytes: room for the highest two of three
		{"the highest that fit", map[string]uint64{"u1": 5, "u2": 7, "u3": 6}, 14, map[string]uint64{"u2": 7, "u3": 6}},
		// no room at all
		{"no room", map[string]uint64{"u1": 5}, 3, map[string]uint64{}},
	} {
		got, size := trimReceipts(tc.in, tc.budget)
		if !maps.Equal(got, tc.want) || got == nil || size > tc.budget {
			t.Errorf("%s: got %v (%d bytes), want %v within %d bytes", tc.name, got, size, tc.want, tc.budget)
		}
	}
	got, size := trimReceipts(many, 500)
	if size > 500 || len(got) == 0 || len(got) == len(many) {
		t.Fatalf("100 receipts in 500 bytes: kept %d taking %d bytes", len(got), size)
	}
	for u, off := range many {
		if _, kept := got[u]; !kept {
			for _, o := range got {
				if o < off {
					t.Fatalf("dropped offset %d but kept %d", off, o)
				}
			}
		}
	}
}
