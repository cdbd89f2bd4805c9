package browser_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// waitForLong is waitFor with a bound of its own.
func (p *page) waitForLong(what, expr string, bound time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, bound+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(bound)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\npage: %s", p.name, what, err, p.describe())
	}
}

// countDrops starts counting, in the page, every time its client loses
// the connection; drops reads the count.
func (p *page) countDrops() {
	p.t.Helper()
	eval[bool](p, `(() => {
		window.__drops = 0;
		tandemApp.client.on("status", (s) => { if (s === "reconnecting" || s === "disconnected") window.__drops++; });
		return true;
	})()`)
}

func (p *page) drops() int {
	p.t.Helper()
	return eval[int](p, `window.__drops`)
}

// pasteText pastes text into the editor at its selection: a paste event
// carrying it, as the browser fires for Ctrl+V.
func (p *page) pasteText(text string) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`(() => {
		const el = document.querySelector("#editor-input");
		el.focus();
		const data = new DataTransfer();
		data.setData("text/plain", %s);
		el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
		return true;
	})()`, js(text)))
}

// TestLargePaste: a 1 MB paste in the bundled app reaches the other user
// (issue 13: a 200 KB paste used to close the socket with 4009 and loop
// reconnecting); neither page loses its connection.
func TestLargePaste(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("big", "top\n")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("big")
	bob.openDoc("big")
	ann.countDrops()
	bob.countDrops()

	// About 1 MB of text, with characters JSON escapes in six bytes.
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, "line %d <b>\"quoted\"</b> \x01 tab\t é 😀\n", i)
	}
	paste := sb.String()
	ann.setCaret(4, 4)
	ann.pasteText(paste)
	want := "top\n" + paste
	// A generous bound: the machine running the suite may be busy, and
	// the paste goes in about 30 ops, one after the other.
	bob.waitForLong("the paste at Bob's", fmt.Sprintf(`document.querySelector("#editor")?.dataset.pending === "false" && document.querySelector("#editor-input").value.length === %d`, len(utf16(want))), 90*time.Second)
	ann.waitForLong("the paste acknowledged", `document.querySelector("#editor")?.dataset.pending === "false"`, 90*time.Second)
	if got := converge(t, ts, "big", ann, bob); got != want {
		t.Fatalf("the server has %d bytes, want %d", len(got), len(want))
	}
	if n := ann.drops() + bob.drops(); n != 0 {
		t.Fatalf("%d connections lost during the paste", n)
	}
}

// TestRefusedEdit: an edit the server must refuse (the document would be
// over its size limit) shows one error in the page and is taken out of
// the text; the connection stays up (no reconnect loop), and editing goes
// on.
func TestRefusedEdit(t *testing.T) {
	ts := startServerWith(t, func(c *serverConfig) { c.File.Limits.MaxDocLen = 1000 })
	ts.createDoc("small", "hello")
	ann := newPage(t, "ann")
	ann.login(ts.URL, "Ann", 0)
	ann.openDoc("small")
	ann.countDrops()

	ann.setCaret(5, 5)
	ann.pasteText(strings.Repeat("x", 2000))
	ann.waitFor("the refusal shown", `document.querySelectorAll(".toast.error[data-code=too_large]").length > 0`)
	ann.synced("hello")
	// Give a loop the time to show itself: typing goes through meanwhile.
	ann.setCaret(5, 5)
	ann.do(typeKeys(" world"))
	ann.synced("hello world")
	if got := eval[int](ann, `document.querySelectorAll(".toast.error").length`); got != 1 {
		t.Fatalf("%d error toasts, want 1: %s", got, eval[string](ann, `[...document.querySelectorAll(".toast")].map((e) => e.textContent).join(" | ")`))
	}
	if msg := eval[string](ann, `document.querySelector(".toast.error").textContent`); !strings.Contains(msg, "1,000 characters") {
		t.Errorf("the error says %q", msg)
	}
	if n := ann.drops(); n != 0 {
		t.Fatalf("the connection dropped %d times", n)
	}
	if got, _ := ts.content("small", -1); got != "hello world" {
		t.Fatalf("the server has %q", got)
	}
}
