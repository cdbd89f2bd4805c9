package server_test

import (
	"encoding/json"
	"testing"
)

// TestAPISystemDocsEvents: creating, renaming, compacting, deleting and importing
// documents through the API is announced on system:docs, so a document list
// updates without polling.
func TestAPISystemDocsEvents(t *testing.T) {
	t.Parallel()
	a := apiStart(t, nil)
	watcher := a.dial("watcher")
	watcher.subscribe("system:docs")

	a.call("POST", "/api/docs", map[string]string{"id": "plan", "content": "v1"}, 201, nil)
	a.call("PUT", "/api/docs/plan/content", map[string]string{"content": "v2"}, 200, nil)
	a.call("PATCH", "/api/docs/plan", map[string]string{"title": "The plan"}, 200, nil)
	a.call("PATCH", "/api/docs/nope", map[string]string{"title": "x"}, 404, nil)
	a.call("PATCH", "/api/docs/plan", map[string]any{"title": 7}, 400, nil)
	a.call("POST", "/api/docs/plan/compact", map[string]int{"before": 1}, 200, nil)
	export := a.call("GET", "/api/docs/plan/export", nil, 200, nil).body
	a.call("DELETE", "/api/docs/plan", nil, 204, nil)
	a.call("POST", "/api/docs/import", export, 201, nil)

	for i, want := range []string{"created", "renamed", "compacted", "deleted", "created"} {
		m := watcher.message("system:docs")
		var data struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(m.Data, &data); err != nil || m.Event != want || data.ID != "plan" || m.Offset != uint64(i+1) {
			t.Fatalf("system:docs event %d: got %s, want %s of plan at offset %d", i, m.Raw, want, i+1)
		}
	}
	if got := a.getDoc("plan", -1); got.Content != "v2" || got.Head != 2 {
		t.Fatalf("after delete and import: %+v", got)
	}
	var list struct {
		Docs []struct{ ID, Title string }
	}
	if err := json.Unmarshal(a.call("GET", "/api/docs", nil, 200, nil).body, &list); err != nil || len(list.Docs) != 1 || list.Docs[0].Title != "The plan" {
		t.Fatalf("the title did not survive export and import: %+v, %v", list, err)
	}
}
