package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/auth"
)

// typeKeys types text into the focused element, key by key.
func typeKeys(text string) chromedp.Action[chromedp.Void] { return chromedp.KeyEvent(text) }

// insertText inserts text at the focused element's selection in one input
// event, as a paste or an IME commit does.
func insertText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// shortcut presses a key with modifiers (kb.Modifier flags).
func shortcut(key string, mods chromedp.Modifier) chromedp.Action[chromedp.Void] {
	return chromedp.KeyEvent(key, chromedp.KeyModifiers(mods))
}

// synced waits until the page's editor has nothing unacknowledged and
// shows text.
func (p *page) synced(text string) {
	p.t.Helper()
	p.waitFor("editor synced with "+js(text), fmt.Sprintf(`document.querySelector("#editor")?.dataset.pending === "false" && document.querySelector("#editor-input").value === %s`, js(text)))
}

// converge waits until both pages and the server agree on the text of doc
// and returns it.
func converge(t *testing.T, ts *testServer, id string, pages ...*page) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		server, _ := ts.content(id, -1)
		ok := true
		for _, p := range pages {
			got := eval[string](p, `document.querySelector("#editor")?.dataset.pending === "false" ? document.querySelector("#editor-input").value : "\u0000pending"`)
			if got != server {
				ok = false
				if time.Now().After(deadline) {
					t.Fatalf("%s shows %q, the server has %q", p.name, got, server)
				}
			}
		}
		if ok {
			return server
		}
		time.Sleep(50 * time.Millisecond) // polling the server between checks
	}
}

// TestConcurrentEditing: two users in separate browser contexts type,
// delete, paste and enter emoji in one document at the same time; both end
// with the server's text, each sees the other's caret, and undo only takes
// back one's own edit.
func TestConcurrentEditing(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("notes", "The quick brown fox jumps over the lazy dog.\n")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("notes")
	bob.openDoc("notes")

	// Ann types at the end while Bob types at the start, at the same time.
	ann.setCaret(45, 45)
	bob.setCaret(0, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, job := range []struct {
		p    *page
		keys string
	}{{ann, "Ann writes at the end. "}, {bob, "Bob starts here. "}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := chromedp.Do(job.p.ctx, typeKeys(job.keys)); err != nil {
				errs <- fmt.Errorf("%s typing: %w", job.p.name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	text := converge(t, ts, "notes", ann, bob)
	if !strings.HasPrefix(text, "Bob starts here. The quick") || !strings.HasSuffix(text, "dog.\nAnn writes at the end. ") {
		t.Fatalf("after concurrent typing: %q", text)
	}

	// Deleting: Ann selects "quick " and deletes it with Backspace while Bob
	// deletes "lazy " with the Delete key from the other side.
	i := strings.Index(text, "quick ")
	ann.setCaret(i, i+len("quick "))
	j := strings.Index(text, "lazy ")
	bob.setCaret(j, j)
	ann.do(typeKeys(kb.Backspace))
	bob.do(typeKeys(strings.Repeat(kb.Delete, len("lazy "))))
	text = converge(t, ts, "notes", ann, bob)
	if strings.Contains(text, "quick") || strings.Contains(text, "lazy") {
		t.Fatalf("after deleting: %q", text)
	}

	// Pasting: Bob pastes two lines over "brown"; Ann enters emoji (one with
	// a skin-tone modifier: several code points, surrogate pairs) and types.
	k := strings.Index(text, "brown")
	bob.setCaret(k, k+len("brown"))
	bob.do(insertText("red\nand green 🍀"))
	end := len(utf16(ann.text()))
	ann.setCaret(end, end)
	ann.do(typeKeys("🎉"), insertText("👍🏽"), typeKeys(" done"))
	text = converge(t, ts, "notes", ann, bob)
	for _, want := range []string{"Bob starts here. The red\nand green 🍀 fox jumps over the dog.\n", "🎉👍🏽 done"} {
		if !strings.Contains(text, want) {
			t.Fatalf("after pasting and emoji: %q lacks %q", text, want)
		}
	}

	// Each shows the other's caret where the other's caret is.
	for _, pair := range [][2]*page{{ann, bob}, {bob, ann}} {
		viewer, other := pair[0], pair[1]
		caret := eval[int](other, `document.querySelector("#editor-input").selectionEnd`)
		viewer.waitFor(other.name+"'s caret", fmt.Sprintf(`[...document.querySelectorAll(".remote-caret")].some(c => c.textContent === %s && c.dataset.index === "%d" && c.offsetHeight > 0)`,
			js(map[*page]string{ann: "Ann", bob: "Bob"}[other]), caret))
	}

	// Undo takes back Ann's last edit only; Bob's paste stays. Redo brings it back.
	before := text
	ann.do(chromedp.Focus(chromedp.CSS("#editor-input")), shortcut("z", chromedp.ModifierCtrl))
	text = converge(t, ts, "notes", ann, bob)
	if strings.Contains(text, "done") || !strings.Contains(text, "red\nand green 🍀") {
		t.Fatalf("after Ann's undo: %q", text)
	}
	ann.do(shortcut("z", chromedp.ModifierCtrl|chromedp.ModifierShift))
	if text = converge(t, ts, "notes", ann, bob); text != before {
		t.Fatalf("after redo: %q, want %q", text, before)
	}
}

// utf16 returns s's UTF-16 code units (editor positions count these).
func utf16(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xd800+(r>>10)), uint16(0xdc00+(r&0x3ff)))
		} else {
			out = append(out, uint16(r))
		}
	}
	return out
}

// u16 is the UTF-16 index of byte offset i in s.
func u16(s string, i int) int { return len(utf16(s[:i])) }

// TestComments: a comment added in one browser shows in the other beside
// the words it is on, and stays beside them while the first user types
// above; replies, resolve and reopen flow both ways.
func TestComments(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("essay", "Intro.\nThe quick brown fox jumps over the lazy dog.\nThe end.\n")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("essay")
	bob.openDoc("essay")

	text := ann.text()
	i := strings.Index(text, "quick brown")
	ann.setCaret(u16(text, i), u16(text, i+len("quick brown")))
	ann.do(
		chromedp.WaitEnabled(chromedp.CSS("#comment-btn")),
		chromedp.Click(chromedp.CSS("#comment-btn")),
		chromedp.WaitVisible(chromedp.CSS("#comment-input")),
		chromedp.SendKeys(chromedp.CSS("#comment-input"), "Is it really quick, @Bob?"),
		chromedp.Click(chromedp.CSS("#comment-submit")),
	)
	// besideWords: the thread's card sits level with its highlighted words.
	besideWords := func(p *page, words string) {
		p.t.Helper()
		check := fmt.Sprintf(`(() => {
			const card = document.querySelector("article.thread");
			if (!card || !card.textContent.includes("Is it really quick")) return "no thread card";
			const ed = tandemApp.view.editor;
			const hl = ed.marks.find((m) => m.kind === "comment" && m.id === card.dataset.commentId);
			if (!hl || hl.text !== %s) return "highlight: " + JSON.stringify(ed.marks);
			const lh = parseFloat(getComputedStyle(ed.content).lineHeight);
			const a = card.getBoundingClientRect().top, b = ed.caretRect(hl.from).top;
			return Math.abs(a - b) < lh ? "ok" : "card at " + a + ", words at " + b;
		})()`, js(words))
		deadline := time.Now().Add(wait)
		for {
			state := eval[string](p, check)
			if state == "ok" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the thread is not beside %q: %s", p.name, words, state)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	besideWords(bob, "quick brown")
	besideWords(ann, "quick brown")
	top0 := eval[float64](bob, `document.querySelector("article.thread").getBoundingClientRect().top`)

	// Bob selects some words (his selection and caret show in Ann's
	// editor); Ann keeps typing above the comment.
	k := strings.Index(text, "over the lazy")
	bob.setCaret(u16(text, k), u16(text, k+len("over the lazy")))
	ann.setCaret(0, 0)
	ann.do(typeKeys("A new first line.\nAnd another one, typed above.\n"))
	besideWords(bob, "quick brown")
	besideWords(ann, "quick brown")
	if top1 := eval[float64](bob, `document.querySelector("article.thread").getBoundingClientRect().top`); top1 <= top0 {
		t.Fatalf("the comment did not move down with its text: top %v, then %v", top0, top1)
	}
	converge(t, ts, "essay", ann, bob)
	ann.waitFor("Bob's caret and selection", `[...document.querySelectorAll(".remote-caret")].some(c => c.textContent === "Bob") && tandemApp.view.editor.marks.some((m) => m.kind === "selection" && m.text === "over the lazy") && CSS.highlights.size > 0`)
	ann.screenshot("editor-two-users")

	// Bob replies; Ann sees it. Ann resolves; Bob sees it resolved and reopens it.
	bob.do(
		chromedp.SendKeys(chromedp.CSS("article.thread .reply-input"), "Quick enough."),
		chromedp.Click(chromedp.CSS("article.thread .reply-form button")),
	)
	ann.waitFor("Bob's reply", `document.querySelector("article.thread .comment.reply")?.textContent.includes("Quick enough.")`)
	ann.do(chromedp.Click(chromedp.CSS("article.thread button.resolve")))
	bob.waitFor("resolved", `document.querySelector("article.thread")?.dataset.resolved === "true" && !tandemApp.view.editor.marks.some((m) => m.kind === "comment") && !CSS.highlights.has("tandem-comment")`)
	bob.do(chromedp.Click(chromedp.CSS("article.thread button.reopen")))
	ann.waitFor("reopened", `document.querySelector("article.thread")?.dataset.resolved === "false" && tandemApp.view.editor.marks.find((m) => m.kind === "comment")?.text === "quick brown" && CSS.highlights.has("tandem-comment")`)
}

// TestChat: typing shows as a typing indicator, a message flows with a
// read receipt back, an @mention raises a notification, and the history
// is there after a reload.
func TestChat(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("plans", "Plans for the week.\n")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("plans")
	bob.openDoc("plans")

	bob.do(chromedp.Focus(chromedp.CSS("#chat-input")), typeKeys("Morning @Ann, shall we start"))
	ann.waitFor("Bob is typing", `document.querySelector("#chat-typing").textContent === "Bob is typing…"`)
	bob.do(typeKeys("?"), typeKeys(kb.Enter))
	ann.waitFor("Bob's message", `[...document.querySelectorAll("#chat-messages .msg")].some(m => m.textContent.includes("Morning @Ann, shall we start?") && m.querySelector("mark.mention.me")?.textContent === "@Ann")`)
	ann.waitFor("typing stopped", `document.querySelector("#chat-typing").textContent === ""`)
	ann.waitFor("a mention notification", `[...document.querySelectorAll(".toast.mention")].some(t => t.textContent.includes("Bob mentioned you") && t.textContent.includes("Morning @Ann"))`)
	bob.waitFor("seen by Ann", `[...document.querySelectorAll("#chat-messages .msg.mine .seen")].some(s => !s.hidden && s.textContent === "Seen by Ann")`)

	ann.do(chromedp.Focus(chromedp.CSS("#chat-input")), typeKeys("Yes! @Bob, the agenda is in the doc."), typeKeys(kb.Enter))
	bob.waitFor("a mention notification", `[...document.querySelectorAll(".toast.mention")].some(t => t.textContent.includes("Ann mentioned you"))`)
	ann.waitFor("seen by Bob", `[...document.querySelectorAll("#chat-messages .msg.mine .seen")].some(s => !s.hidden && s.textContent === "Seen by Bob")`)
	bob.do(chromedp.Focus(chromedp.CSS("#chat-input")), typeKeys("Great"))
	ann.waitFor("Bob is typing", `document.querySelector("#chat-typing").textContent === "Bob is typing…"`)
	ann.screenshot("chat")

	// The history is the server's: a reload shows both messages.
	bob.do(chromedp.Reload())
	bob.waitFor("chat history after reload", `document.querySelectorAll("#chat-messages .msg").length === 2`)
}

// TestHistory: the slider shows an earlier version's text exactly, with its
// authors; the diff shows changes; restoring applies the old text as a new
// edit.
func TestHistory(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("story", "Once upon a time.\n")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("story")
	bob.openDoc("story")

	ann.setCaret(len("Once upon a time."), len("Once upon a time."))
	ann.do(insertText(" There was a fox."))
	converge(t, ts, "story", ann, bob)
	_, mid := ts.content("story", -1)
	end := len(utf16(bob.text()))
	bob.setCaret(end, end)
	bob.do(insertText("The fox said “héllo 👋”.\n"))
	ann.do(insertText(" It was quick."))
	final := converge(t, ts, "story", ann, bob)
	want, _ := ts.content("story", mid)

	ann.do(chromedp.Click(chromedp.CSS("#history-btn")), chromedp.WaitVisible(chromedp.CSS("#history-slider")))
	_, head := ts.content("story", -1)
	ann.waitFor("history at the head", fmt.Sprintf(`document.querySelector("#history-text")?.dataset.version === "%d"`, head))
	// Step back with the keyboard to version mid.
	ann.do(chromedp.Focus(chromedp.CSS("#history-slider")))
	for v := head; v > mid; v-- {
		ann.do(typeKeys(kb.ArrowLeft))
	}
	ann.waitFor("version "+fmt.Sprint(mid), fmt.Sprintf(`document.querySelector("#history").dataset.loading === "false" && document.querySelector("#history-text").dataset.version === "%d" && document.querySelector("#history-text").textContent === %s`, mid, js(want)))
	ann.waitFor("authors", `document.querySelector("#history-legend").textContent.includes("Ann") && document.querySelector("#history-text .by")`)

	// Version 1 (the created text) exactly, then the head with both authors.
	ann.do(typeKeys(kb.Home), typeKeys(kb.ArrowRight))
	v1, _ := ts.content("story", 1)
	ann.waitFor("version 1", fmt.Sprintf(`document.querySelector("#history-text").dataset.version === "1" && document.querySelector("#history-text").textContent === %s`, js(v1)))
	ann.do(typeKeys(kb.End))
	ann.waitFor("the head with both authors", fmt.Sprintf(`document.querySelector("#history-text").dataset.version === "%d" && document.querySelector("#history-text").textContent === %s && document.querySelector("#history-legend").textContent.includes("Bob")`, head, js(final)))
	ann.screenshot("history")

	// Changes between version 1 and the head.
	ann.do(chromedp.Click(chromedp.CSS("#mode-diff")))
	ann.do(chromedp.SetValue(chromedp.CSS("#diff-from"), "1"), chromedp.Focus(chromedp.CSS("#diff-from")), typeKeys(kb.Enter), chromedp.Click(chromedp.CSS("#mode-diff")))
	ann.waitFor("a diff", `!document.querySelector("#history-diff").hidden && document.querySelector("#history-diff ins")?.textContent.includes("fox")`)

	// Restore version mid: a new edit; Bob's editor follows.
	ann.do(chromedp.Click(chromedp.CSS("#mode-authors")), chromedp.Focus(chromedp.CSS("#history-slider")))
	for v := head; v > mid; v-- {
		ann.do(typeKeys(kb.ArrowLeft))
	}
	ann.waitFor("version "+fmt.Sprint(mid), fmt.Sprintf(`document.querySelector("#history-text").dataset.version === "%d"`, mid))
	ann.do(chromedp.Click(chromedp.CSS("#history-restore")), chromedp.Click(chromedp.CSS("#restore-yes")))
	bob.synced(want)
	if got, v := ts.content("story", -1); got != want || v != head+1 {
		t.Fatalf("after restore: version %d %q, want version %d %q", v, got, head+1, want)
	}
	ann.do(chromedp.Click(chromedp.CSS("#history-close")))
	ann.synced(want)
}

// loadClient drives ops into a document over a raw WebSocket, as a
// third-party client would, until ctx ends.
func loadClient(ctx context.Context, t *testing.T, base, user, doc string, every time.Duration) error {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	send := func(v any) error { return ws.WriteJSON(v) }
	// read returns the next frame with the given id.
	read := func(id int) (map[string]any, error) {
		for {
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := ws.ReadMessage()
			if err != nil {
				return nil, err
			}
			for _, line := range strings.Split(string(b), "\n") {
				var f map[string]any
				if json.Unmarshal([]byte(line), &f) != nil {
					continue
				}
				if n, ok := f["id"].(float64); ok && int(n) == id {
					if f["type"] == "error" {
						return nil, fmt.Errorf("%v: %v", f["code"], f["message"])
					}
					return f, nil
				}
			}
		}
	}
	if err := send(map[string]any{"id": 1, "type": "connect", "token": "", "client": "browser-test", "user": user, "name": user}); err != nil {
		return err
	}
	if _, err := read(1); err != nil {
		return err
	}
	if err := send(map[string]any{"id": 2, "type": "open", "doc": doc}); err != nil {
		return err
	}
	snap, err := read(2)
	if err != nil {
		return err
	}
	version := int(snap["version"].(float64))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for id := 3; ; id++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := send(map[string]any{"id": id, "type": "op", "doc": doc, "version": version, "op": []any{"x"}, "uid": fmt.Sprintf("%s-%d", user, id)}); err != nil {
			return err
		}
		ack, err := read(id)
		if err != nil {
			return err
		}
		version = int(ack["version"].(float64)) + 1
	}
}

// TestDashboard: the dashboard charts system:stats live (ops/s rises while
// a load runs), lists the busy document and its users, raises an alert
// past a threshold, and renders a dashboard:* channel generically.
func TestDashboard(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("load", "")
	dash := newPage(t, "dashboard")
	ann := newPage(t, "ann")
	ann.login(ts.URL, "Ann", 0)
	dash.do(chromedp.Navigate(ts.URL + "/dashboard"))
	dash.waitFor("a first sample", `document.querySelector("[data-metric=ops_per_sec]")?.dataset.value === "0" && document.querySelector("#conn-status").dataset.status === "connected"`)
	dash.waitFor("Ann among the active users", `[...document.querySelectorAll("#active-users li")].some(li => li.textContent.includes("Ann"))`)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, user := range []string{"loadbot-1", "loadbot-2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loadClient(ctx, t, ts.URL, user, "load", 12*time.Millisecond); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", user, err)
			}
		}()
	}
	defer func() {
		stop()
		wg.Wait()
	}()
	dash.waitFor("ops/s rising", `Number(document.querySelector("[data-metric=ops_per_sec]").dataset.value) > 20`)
	if os.Getenv("TANDEM_SCREENSHOTS") != "" {
		// A few more seconds of load, for a chart worth a screenshot.
		dash.waitFor("more samples", `document.querySelector("#chart-rates polyline").points.length >= 10`)
	}
	dash.waitFor("the busy document", `Number(document.querySelector("#doc-stats tr[data-doc=load] td[data-value]")?.dataset.value) > 10`)

	// An alert when ops/s crosses a threshold set on the page.
	dash.do(chromedp.SetValue(chromedp.CSS("#th-ops_per_sec"), "10"), chromedp.Focus(chromedp.CSS("#th-ops_per_sec")), typeKeys(kb.Tab))
	dash.waitFor("an ops/s alert", `[...document.querySelectorAll("#alerts li:not(.cleared)")].some(li => li.textContent.includes("Ops / s") && li.textContent.includes("above 10"))`)

	// A dashboard:* channel fed by the HTTP broadcast API.
	ts.api("POST", "/api/broadcast", map[string]any{"channel": "dashboard:sales", "event": "tick", "data": map[string]any{"revenue": 120, "orders": map[string]any{"open": 3}, "region": "EU"}}, nil)
	dash.do(
		chromedp.SetValue(chromedp.CSS("#channel-name"), "dashboard:sales"),
		chromedp.Click(chromedp.CSS("#add-channel")),
	)
	dash.waitFor("the channel's history", `document.querySelector("[data-channel='dashboard:sales'] [data-field=revenue]")?.dataset.value === "120"`)
	ts.api("POST", "/api/broadcast", map[string]any{"channel": "dashboard:sales", "event": "tick", "data": map[string]any{"revenue": 180, "orders": map[string]any{"open": 5}}}, nil)
	dash.waitFor("a live update", `document.querySelector("[data-channel='dashboard:sales'] [data-field=revenue]").dataset.value === "180" && document.querySelector("[data-channel='dashboard:sales'] [data-field='orders.open']").dataset.value === "5"`)
	dash.screenshotFull("dashboard")

	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	dash.waitFor("the alert clearing", `document.querySelector("#alerts li.cleared")?.textContent.includes("Ops / s")`)
}

// TestReconnect: the server stops; the editor says it is reconnecting and
// keeps what is typed meanwhile; the server restarts on the same address
// and data, and the typing reaches it and the other user.
func TestReconnect(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("journal", "Day one.\n")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("journal")
	bob.openDoc("journal")
	ann.setCaret(len("Day one.\n"), len("Day one.\n"))
	ann.do(typeKeys("Online. "))
	converge(t, ts, "journal", ann, bob)

	ts.Stop()
	ann.waitFor("reconnecting", `document.querySelector("#conn-status").dataset.status === "reconnecting" && document.querySelector("#conn-status").textContent.includes("Reconnecting")`)
	ann.do(typeKeys("Typed while the server was down. "), insertText("Pasted too ✂️."))
	ann.waitFor("offline edits kept", `document.querySelector("#save-state").dataset.state === "offline" && document.querySelector("#editor-input").value.endsWith("Pasted too ✂️.")`)
	ann.screenshot("reconnecting")

	ts.Restart() // stopped: starts it again on the same address and data
	want := "Day one.\nOnline. Typed while the server was down. Pasted too ✂️."
	ann.waitFor("connected again", `document.querySelector("#conn-status").dataset.status === "connected"`)
	ann.synced(want)
	bob.synced(want)
	if got, _ := ts.content("journal", -1); got != want {
		t.Fatalf("server has %q, want %q", got, want)
	}
	// And editing carries on.
	ann.do(typeKeys(" Back."))
	bob.synced(want + " Back.")
}

// TestDocumentsAndErrors: the list creates and opens documents, a missing
// document says so (and offers to create it), an unreachable server says
// so, in production mode a token without access gets a clear refusal, and
// a development server with API keys explains why the app cannot list
// documents.
func TestDocumentsAndErrors(t *testing.T) {
	ts := startServer(t)
	ann := newPage(t, "ann")
	ann.login(ts.URL, "Ann", 0)
	ann.do(
		chromedp.WaitVisible(chromedp.CSS("#new-doc-id")),
		chromedp.SendKeys(chromedp.CSS("#new-doc-id"), "Team notes"),
		chromedp.Click(chromedp.CSS("#create-doc")),
	)
	ann.waitFor("the new document open", `location.hash === "#/doc/Team-notes" && document.querySelector("#editor")?.dataset.state === "ready"`)
	ann.do(chromedp.Click(chromedp.CSS("a.back")))
	ann.waitFor("the list", `[...document.querySelectorAll("#doc-list a")].some(a => a.textContent === "Team-notes")`)
	// Another user's document shows up live.
	ts.createDoc("from-api", "hello")
	ann.waitFor("a document created elsewhere", `[...document.querySelectorAll("#doc-list a")].some(a => a.textContent === "from-api")`)

	ann.do(chromedp.Navigate(ts.URL + "/#/doc/no-such-doc"))
	ann.waitFor("not found", `document.querySelector("#doc-error")?.dataset.code === "not_found" && document.querySelector("#doc-error").textContent.includes("Document not found")`)
	ann.do(chromedp.Click(chromedp.CSS("#create-missing")))
	ann.waitFor("created and open", `document.querySelector("#editor")?.dataset.state === "ready"`)

	// Production mode: a token that may read one document only.
	secret := "browser-test-secret-0123456789abcdef"
	prod := startServerWith(t, func(c *serverConfig) { c.JWTSecret = secret })
	prod.createDocAuth("open-doc", "You may read this.", mint(t, secret, "admin", []string{"write:*", "read:*"}))
	prod.createDocAuth("secret-doc", "Not for you.", mint(t, secret, "admin", []string{"write:*", "read:*"}))
	token := mint(t, secret, "carol", []string{"read:doc:open-doc", "subscribe:*", "presence:*", "publish:chat:*"})
	carol := newPage(t, "carol")
	carol.do(chromedp.Navigate(prod.URL + "/?token=" + token + "#/doc/open-doc"))
	carol.waitFor("the readable document", `document.querySelector("#editor")?.dataset.state === "ready" && document.querySelector("#editor-input").value === "You may read this."`)
	carol.waitFor("the token out of the address bar", `!location.search.includes("token")`)
	carol.do(chromedp.Navigate(prod.URL + "/#/doc/secret-doc"))
	carol.waitFor("forbidden", `document.querySelector("#doc-error")?.dataset.code === "forbidden" && document.querySelector("#doc-error").textContent.includes("don't have access")`)
	// Without a token the production server asks for one.
	dave := newPage(t, "dave")
	dave.do(chromedp.Navigate(prod.URL + "/"))
	dave.waitFor("sign-in needed", `document.querySelector("main").textContent.includes("Sign-in needed")`)
	// A development server whose HTTP API needs a key says so rather than
	// asking for a token it could not check.
	locked := startServerWith(t, func(c *serverConfig) { c.APIKeys = []string{"browser-test-api-key-0123456789"} })
	dave.do(chromedp.Navigate(locked.URL + "/"))
	dave.waitFor("the API locked", `document.querySelector("#api-locked")?.textContent.includes("TANDEM_API_KEYS")`)

	// The server goes away: the status says so, and so does the list.
	ann.do(chromedp.Navigate(ts.URL + "/#/"))
	ann.waitFor("the list", `document.querySelectorAll("#doc-list li[data-doc]").length === 3`)
	ts.Stop()
	ann.waitFor("reconnecting", `document.querySelector("#conn-status").dataset.status === "reconnecting"`)
	ann.do(chromedp.Click(chromedp.CSS("a.brand")))
	ann.waitFor("unreachable", `document.querySelector("#doc-list").textContent.includes("Can't reach the Tandem server")`)
}

func mint(t *testing.T, secret, user string, allow []string) string {
	t.Helper()
	tok, err := auth.NewVerifier([]byte(secret)).Mint(user, strings.ToUpper(user[:1])+user[1:], allow, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestNarrowWindow: on a phone-sized window the document view stacks into
// one column with no sideways scrolling, and its controls stay usable.
func TestNarrowWindow(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("mobile", "A short note, read on a small screen.\n")
	ann := newPage(t, "ann")
	ann.do(chromedp.EmulateViewport(390, 800))
	ann.login(ts.URL, "Ann", 2)
	ann.openDoc("mobile")
	ann.setCaret(2, 7)
	ann.do(chromedp.Click(chromedp.CSS("#comment-btn")), chromedp.SendKeys(chromedp.CSS("#comment-input"), "Short?"), chromedp.Click(chromedp.CSS("#comment-submit")))
	ann.waitFor("the comment", `document.querySelector("article.thread")?.textContent.includes("Short?")`)
	ann.waitFor("one column without sideways scrolling", `(() => {
		const ta = document.querySelector("#editor-input").getBoundingClientRect();
		const chat = document.querySelector("#chat").getBoundingClientRect();
		const thread = document.querySelector("article.thread").getBoundingClientRect();
		return document.documentElement.scrollWidth <= innerWidth && ta.width >= 300 && thread.top >= ta.bottom && chat.top >= thread.bottom && chat.width >= 300;
	})()`)
	ann.screenshotFull("narrow")
}

// TestDiffSplice checks, in the browser, how the editor turns a textarea
// change into one splice: equal characters resolved by the caret, and
// surrogate pairs (emoji) never split.
func TestDiffSplice(t *testing.T) {
	ts := startServer(t)
	p := newPage(t, "unit")
	p.do(chromedp.Navigate(ts.URL + "/healthz"))
	type tc struct {
		Old, Now string
		Caret    int
		Want     []any
	}
	cases := []tc{
		{"ab", "abb", 2, []any{1.0, 0.0, "b"}},                              // typed "b" after the first "b"
		{"abb", "ab", 1, []any{1.0, 1.0, ""}},                               // backspace of the second "b"
		{"abb", "ab", 2, []any{2.0, 1.0, ""}},                               // forward delete of the last "b"
		{"hello world", "hello brave world", 12, []any{6.0, 0.0, "brave "}}, // typed in the middle
		{"The quick fox", "The slow fox", 8, []any{4.0, 5.0, "slow"}},       // pasted over a selection
		{"a😀", "a😃", 3, []any{1.0, 2.0, "😃"}},                               // same high surrogate
		{"😀", "😀😀", 2, []any{0.0, 0.0, "😀"}},                                // emoji typed before an equal one
		{"😀", "😀😀", 4, []any{2.0, 0.0, "😀"}},                                // emoji typed after an equal one
		{"x\U00010600", "x\U0001F600", 3, []any{1.0, 2.0, "😀"}},             // same low surrogate
		{"", "line one\nline two", 17, []any{0.0, 0.0, "line one\nline two"}},
	}
	b, _ := json.Marshal(cases)
	got := eval[[]any](p, `import("/editor.js").then(m => `+string(b)+`.map(c => m.diffSplice(c.Old, c.Now, c.Caret)))`)
	for i, c := range cases {
		if g, _ := json.Marshal(got[i]); string(g) != mustJSON(c.Want) {
			t.Errorf("diffSplice(%q, %q, caret %d) = %s, want %s", c.Old, c.Now, c.Caret, g, mustJSON(c.Want))
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestIMEComposition: while Ann composes with an input method, Bob's edits
// arrive; the composition is not disturbed, and once committed both texts
// converge with both edits.
func TestIMEComposition(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("ime", "Hello and goodbye.")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("ime")
	bob.openDoc("ime")
	ann.setCaret(len("Hello "), len("Hello "))
	compose := func(text string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			n := int64(len(utf16(text)))
			_, err := cdp.Call(ctx, t, input.ImeSetComposition, input.ImeSetCompositionParams{Text: text, SelectionStart: n, SelectionEnd: n})
			return err
		})
	}
	ann.do(compose("に"), compose("にほ"))
	ann.waitFor("composing", `document.querySelector("#editor-input").value === "Hello にほand goodbye."`)
	bob.setCaret(0, 0)
	bob.do(typeKeys("Bob: "))
	bob.synced("Bob: Hello and goodbye.")
	ann.do(compose("にほん"))
	ann.waitFor("the composition intact", `document.querySelector("#editor-input").value === "Hello にほんand goodbye."`)
	ann.do(insertText("日本 ")) // commits the composition
	if got := converge(t, ts, "ime", ann, bob); got != "Bob: Hello 日本 and goodbye." {
		t.Fatalf("after the composition: %q", got)
	}
}
