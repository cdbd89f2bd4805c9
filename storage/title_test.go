package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/doc"
)

func TestSetTitle(t *testing.T) {
	path := t.TempDir() + "/tandem.db"
	db := openAt(t, path, Config{})
	mustCreate(t, db, "d")
	if err := db.SetTitle(ctx(t), "d", "Quarterly plan"); err != nil {
		t.Fatal(err)
	}
	info, err := db.GetDoc("d")
	if err != nil || info.Title != "Quarterly plan" {
		t.Fatalf("GetDoc: %+v, %v", info, err)
	}
	for _, tc := range []struct {
		id, title string
		want      error
	}{
		{"nope", "x", doc.ErrNotFound},
		{"d", strings.Repeat("x", 201), doc.ErrInvalid},
		{"d", "bad \xff", doc.ErrInvalid},
	} {
		if err := db.SetTitle(ctx(t), tc.id, tc.title); !errors.Is(err, tc.want) {
			t.Errorf("SetTitle(%q, %.10q) = %v, want %v", tc.id, tc.title, err, tc.want)
		}
	}
	if info, _ := db.GetDoc("d"); info.Title != "Quarterly plan" {
		t.Errorf("a failed rename changed the title to %q", info.Title)
	}
}
