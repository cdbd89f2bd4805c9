package server_test

import (
	"strings"
	"testing"

	"github.com/tandemhq/tandem/proto"
)

// TestErrorsNameTheirSubject: an error frame answering a request about a
// channel or a document names it, also when the document's session
// rejects an op after the read goroutine handed it over.
func TestErrorsNameTheirSubject(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	r := connectRaw(t, ts.URL, "", "ann")
	if f := r.request(map[string]any{"type": "open", "doc": "named"}); f.Type != "snapshot" {
		t.Fatalf("open: %s", f.Raw)
	}
	for _, tc := range []struct {
		name         string
		req          map[string]any
		code         string
		channel, doc string
	}{
		{"op past the end, rejected by the session", map[string]any{"type": "op", "doc": "named", "version": 0, "op": []any{5, "x"}, "uid": "u1"}, proto.CodeBadRequest, "", "named"},
		{"op at a future version", map[string]any{"type": "op", "doc": "named", "version": 9, "op": []any{"x"}, "uid": "u2"}, proto.CodeBadRequest, "", "named"},
		{"op on a document not open", map[string]any{"type": "op", "doc": "other", "version": 0, "op": []any{"x"}, "uid": "u3"}, proto.CodeBadRequest, "", "other"},
		{"publish on the read-only system channel", map[string]any{"type": "publish", "channel": "system:stats", "data": map[string]any{}}, proto.CodeForbidden, "system:stats", ""},
		{"retract a message that is not there", map[string]any{"type": "retract", "channel": "chat:none", "offset": 7}, "", "chat:none", ""},
		{"publish with a bad name", map[string]any{"type": "publish", "channel": "chat:" + strings.Repeat("n", 300), "data": 1}, proto.CodeBadRequest, "chat:" + strings.Repeat("n", 300), ""},
		{"a request about nothing", map[string]any{"type": "nonsense"}, proto.CodeBadRequest, "", ""},
	} {
		f := r.request(tc.req)
		if f.Type != proto.TypeError || tc.code != "" && f.Code != tc.code || f.Channel != tc.channel || f.Doc != tc.doc {
			t.Errorf("%s: got %s; want an error %q about channel %q, doc %q", tc.name, f.Raw, tc.code, tc.channel, tc.doc)
		}
	}
}
