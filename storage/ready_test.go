package storage

import (
	"errors"
	"testing"
)

// TestReadyWritesNothing: Ready answers from the committer's state, with no
// transaction, and fails once the store is closed.
func TestReadyWritesNothing(t *testing.T) {
	db := openTestDB(t, Config{})
	mustCreate(t, db, "r")
	before := db.Stats()
	for range 100 {
		if err := db.Ready(); err != nil {
			t.Fatalf("Ready on an open store: %v", err)
		}
	}
	if after := db.Stats(); after.Commits != before.Commits || after.Requests != before.Requests {
		t.Fatalf("100 Ready calls: %d commits and %d requests, before %d and %d", after.Commits, after.Requests, before.Commits, before.Requests)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready on a closed store: %v, want ErrClosed", err)
	}
}
