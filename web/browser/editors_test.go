package browser_test

// The editor bindings (clients/js/src/codemirror.js and monaco.js) in a real
// Chromium: the example pages (clients/js/examples), bundled with esbuild
// for the test, edit one document beside the bundled demo, against the real
// server.

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// buildExamples bundles the example pages into a temporary directory with
// clients/js/examples/build.mjs (esbuild from clients/js/node_modules, which
// scripts/setup.sh installs) and serves them on 127.0.0.1. Without the npm
// packages the test skips, or fails when TANDEM_REQUIRE_BROWSER is set.
func buildExamples(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "clients/js/node_modules/esbuild")); err != nil {
		msg := "the example pages' npm packages are not installed: run scripts/setup.sh"
		if os.Getenv("TANDEM_REQUIRE_BROWSER") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	cmd := exec.Command("node", "clients/js/examples/build.mjs", "--outdir", dir, "--no-minify")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the example pages: %v\n%s", err, out)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// netHook replaces the page's WebSocket so that a test can drop the
// network: __tandemNet.drop() closes every open socket and makes new ones
// fail (they dial a closed port on 127.0.0.1) until restore().
const netHook = `(() => {
	const Native = window.WebSocket;
	const live = new Set();
	window.__tandemNet = {
		offline: false,
		drop() { this.offline = true; for (const s of live) s.close(); },
		restore() { this.offline = false; },
		get open() { return [...live].filter((s) => s.readyState === 1).length; },
	};
	window.WebSocket = class extends Native {
		constructor(url, protocols) {
			super(window.__tandemNet.offline ? "ws://127.0.0.1:9/" : url, protocols);
			live.add(this);
			this.addEventListener("close", () => live.delete(this));
		}
	};
})();`

// editor is one page editing the shared document: an example page
// (CodeMirror or Monaco) or the bundled demo.
type editor struct {
	*page
	kind string // "codemirror", "monaco" or "demo"
	user string // the name others see
}

// openExample opens an example page on doc as name, with the network hook.
func openExample(t *testing.T, examples, server, kind, name, doc string) *editor {
	t.Helper()
	p := newPage(t, name+"-"+kind)
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: netHook})
		return err
	}))
	q := url.Values{"server": {server}, "doc": {doc}, "name": {name}, "user": {strings.ToLower(name)}}
	p.do(chromedp.Navigate(examples + "/" + kind + ".html?" + q.Encode()))
	e := &editor{page: p, kind: kind, user: name}
	e.waitFor(kind+" ready", `window.tandemExample?.doc.loaded && document.querySelector("#status").dataset.status === "connected" && `+e.textExpr()+` === tandemExample.doc.text && tandemExample.doc.text !== ""`)
	return e
}

// textExpr is a JavaScript expression of the editor's text.
func (e *editor) textExpr() string {
	switch e.kind {
	case "codemirror":
		return `tandemExample.view.state.doc.toString()`
	case "monaco":
		return `tandemExample.binding.text()`
	}
	return `document.querySelector("#editor-input").value`
}

// syncedText returns the editor's text once nothing is pending, else a
// marker that matches no text.
func (e *editor) syncedText() string {
	if e.kind == "demo" {
		return eval[string](e.page, `document.querySelector("#editor")?.dataset.pending === "false" ? document.querySelector("#editor-input").value : "\u0000pending"`)
	}
	return eval[string](e.page, `(() => { const x = tandemExample; if (x.doc.pending || x.binding.sync.held) return "\u0000pending"; const t = `+e.textExpr()+`; return t === x.doc.text ? t : "\u0000differs: " + t; })()`)
}

// placeCaret focuses the editor and selects code points [from, to).
func (e *editor) placeCaret(from, to int) {
	e.t.Helper()
	switch e.kind {
	case "codemirror":
		eval[bool](e.page, fmt.Sprintf(`(() => { const x = tandemExample; x.view.dispatch({selection: {anchor: x.binding.toUTF16(%d), head: x.binding.toUTF16(%d)}}); x.view.focus(); return true; })()`, from, to))
	case "monaco":
		eval[bool](e.page, fmt.Sprintf(`(() => { const x = tandemExample, m = x.editor.getModel(); const a = m.getPositionAt(x.binding.toUTF16(%d)), b = m.getPositionAt(x.binding.toUTF16(%d));
			x.editor.setSelection({selectionStartLineNumber: a.lineNumber, selectionStartColumn: a.column, positionLineNumber: b.lineNumber, positionColumn: b.column}); x.editor.focus(); return true; })()`, from, to))
	default:
		text := e.text()
		e.setCaret(cpToU16(text, from), cpToU16(text, to))
	}
}

// caret returns the editor's caret (the head of its main selection) in code points.
func (e *editor) caret() int {
	e.t.Helper()
	if e.kind == "demo" {
		text := e.text()
		return u16ToCP(text, eval[int](e.page, `document.querySelector("#editor-input").selectionEnd`))
	}
	return eval[int](e.page, `tandemExample.caret()`)
}

// paste pastes text over the selection through a paste event, as the
// clipboard does (the demo: one input of the text).
func (e *editor) paste(text string) chromedp.Action[chromedp.Void] {
	target := map[string]string{
		"codemirror": `tandemExample.view.contentDOM`,
		"monaco":     `document.activeElement`,
	}[e.kind]
	if target == "" {
		return insertText(text)
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		taken, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const dt = new DataTransfer(); dt.setData("text/plain", %s);
			const ev = new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true});
			%s.dispatchEvent(ev); return ev.defaultPrevented; })()`, js(text), target)))
		if err == nil && !taken {
			err = fmt.Errorf("the editor did not take the paste event")
		}
		return err
	})
}

// sees waits until viewer shows other's caret at other's position.
func (viewer *editor) sees(other *editor, text string) {
	viewer.t.Helper()
	want := other.caret()
	var expr string
	if viewer.kind == "demo" {
		expr = fmt.Sprintf(`[...document.querySelectorAll(".remote-caret")].some((c) => c.textContent === %s && c.dataset.index === "%d" && c.offsetHeight > 0)`, js(other.user), cpToU16(text, want))
	} else {
		expr = fmt.Sprintf(`tandemExample.binding.remoteCarets().some((c) => c.name === %s && tandemExample.binding.toCodePoint(c.pos) === %d && %s)`, js(other.user), want,
			map[string]string{"codemirror": "true", "monaco": "c.element !== null && c.element.offsetHeight > 0"}[viewer.kind])
	}
	viewer.waitFor(fmt.Sprintf("%s's caret at %d", other.user, want), expr)
}

// convergeAll waits until every editor shows the server's text of id with
// nothing pending, and returns it.
func convergeAll(t *testing.T, ts *testServer, id string, eds ...*editor) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		server, _ := ts.content(id, -1)
		ok := true
		for _, e := range eds {
			if got := e.syncedText(); got != server {
				ok = false
				if time.Now().After(deadline) {
					t.Fatalf("%s shows %q, the server has %q", e.name, got, server)
				}
			}
		}
		if ok {
			return server
		}
		time.Sleep(50 * time.Millisecond) // polling the server between checks
	}
}

// together runs each editor's actions at the same time.
func together(t *testing.T, jobs map[*editor][]chromedp.Action[chromedp.Void]) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	for e, actions := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(e.ctx, wait)
			defer cancel()
			if err := chromedp.Do(ctx, actions...); err != nil {
				errs <- fmt.Errorf("%s: %w", e.name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// cpToU16 is the UTF-16 index of code point cp in s.
func cpToU16(s string, cp int) int {
	r := []rune(s)
	if cp > len(r) {
		cp = len(r)
	}
	return len(utf16(string(r[:cp])))
}

// u16ToCP is the code point of UTF-16 index i in s.
func u16ToCP(s string, i int) int {
	n := 0
	for cp, r := range []rune(s) {
		if n >= i {
			return cp
		}
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return len([]rune(s))
}

// cpIndex is the code point where sub starts in s (-1 if absent).
func cpIndex(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		return -1
	}
	return len([]rune(s[:i]))
}

// TestEditors: a CodeMirror page, a Monaco page and the bundled demo edit one
// document at the same time (emoji, a multi-cursor edit, pastes over
// selections, IME compositions) and converge to the server's text; each
// shows the others' carets at their characters; CodeMirror's undo takes
// back only its user's text while the others type; a comment made in the
// demo marks the same words in CodeMirror and Monaco; and pages whose
// network drops keep their edits and converge without duplicates.
func TestEditors(t *testing.T) {
	needBrowser(t)
	examples := buildExamples(t)
	ts := startServer(t)
	const id = "shared"
	ts.createDoc(id, "Tandem binds editors.\nCodeMirror, Monaco and the demo 🎈 type here.\nThe end.\n")

	cm := openExample(t, examples, ts.URL, "codemirror", "Cleo", id)
	mo := openExample(t, examples, ts.URL, "monaco", "Max", id)
	demo := &editor{page: newPage(t, "dee-demo"), kind: "demo", user: "Dee"}
	demo.login(ts.URL, "Dee", 2)
	demo.openDoc(id)
	all := []*editor{cm, mo, demo}

	// Everyone types at once: Cleo at the end of the first line, Max at the
	// start, Dee at the end; emoji among the keys.
	text := convergeAll(t, ts, id, all...)
	cm.placeCaret(cpIndex(text, "."), cpIndex(text, "."))
	mo.placeCaret(0, 0)
	end := len([]rune(text))
	demo.placeCaret(end, end)
	together(t, map[*editor][]chromedp.Action[chromedp.Void]{
		cm:   {typeKeys(" Cleo types 😀 here")},
		mo:   {typeKeys("Max 🎉 starts. ")},
		demo: {typeKeys("Dee "), insertText("👍🏽"), typeKeys(" ends.")},
	})
	text = convergeAll(t, ts, id, all...)
	for _, want := range []string{"Max 🎉 starts. Tandem binds editors Cleo types 😀 here.\n", "The end.\nDee 👍🏽 ends."} {
		if strings.Count(text, want) != 1 {
			t.Fatalf("after typing together: %q lacks %q", text, want)
		}
	}

	t.Run("multi-cursor and pastes", func(t *testing.T) {
		// Cleo puts a caret at the start of each of the first three lines
		// and types "> " once, while Max pastes over "type" and Dee over
		// "end".
		eval[bool](cm.page, `(() => { const x = tandemExample, d = x.view.state.doc;
			x.view.dispatch({selection: x.EditorSelection.create([1, 2, 3].map((n) => x.EditorSelection.cursor(d.line(n).from)))}); x.view.focus(); return true; })()`)
		text := convergeAll(t, ts, id, all...)
		i := cpIndex(text, "type here")
		mo.placeCaret(i, i+len("type"))
		j := cpIndex(text, "end.")
		demo.placeCaret(j, j+len("end"))
		together(t, map[*editor][]chromedp.Action[chromedp.Void]{
			cm:   {typeKeys("> ")},
			mo:   {mo.paste("write 🖊")},
			demo: {demo.paste("Fin 🏁")},
		})
		// Cleo pastes over "binds" while the others' edits land.
		k := cpIndex(eval[string](cm.page, `tandemExample.doc.text`), "binds")
		cm.placeCaret(k, k+len("binds"))
		cm.do(cm.paste("ties 🧩 together"))
		text = convergeAll(t, ts, id, all...)
		lines := strings.Split(text, "\n")
		for n, line := range lines[:3] {
			if !strings.HasPrefix(line, "> ") {
				t.Fatalf("line %d lacks the multi-cursor's \"> \": %q", n+1, text)
			}
		}
		for _, want := range []string{"ties 🧩 together", "write 🖊 here", "The Fin 🏁."} {
			if strings.Count(text, want) != 1 {
				t.Fatalf("after the pastes: %q lacks %q", text, want)
			}
		}
		// Max types with two cursors: one op of two inserts.
		a, b := cpIndex(text, "Dee 👍🏽"), cpIndex(text, "🏁")+1
		eval[bool](mo.page, fmt.Sprintf(`(() => { const x = tandemExample, m = x.editor.getModel();
			const sel = (cp) => { const p = m.getPositionAt(x.binding.toUTF16(cp)); return {selectionStartLineNumber: p.lineNumber, selectionStartColumn: p.column, positionLineNumber: p.lineNumber, positionColumn: p.column}; };
			x.editor.setSelections([sel(%d), sel(%d)]); x.editor.focus(); return true; })()`, a, b))
		mo.do(typeKeys("*"))
		text = convergeAll(t, ts, id, all...)
		if !strings.Contains(text, "🏁*.") || !strings.Contains(text, "*Dee 👍🏽") || strings.Count(text, "*") != 2 {
			t.Fatalf("after Max's two cursors: %q", text)
		}
	})

	t.Run("carets", func(t *testing.T) {
		// Each puts its caret after an emoji (a surrogate pair in UTF-16);
		// each sees the other two's carets at those characters.
		text := convergeAll(t, ts, id, all...)
		cm.placeCaret(cpIndex(text, "🧩")+1, cpIndex(text, "🧩")+1)
		mo.placeCaret(cpIndex(text, "🖊")+1, cpIndex(text, "🖊")+1)
		demo.placeCaret(cpIndex(text, "🏁")+1, cpIndex(text, "🏁")+1)
		for _, viewer := range all {
			for _, other := range all {
				if other != viewer {
					viewer.sees(other, text)
				}
			}
		}
	})

	t.Run("undo takes back only Cleo's text while the others type", func(t *testing.T) {
		text := convergeAll(t, ts, id, all...)
		i := cpIndex(text, "here.")
		cm.placeCaret(i, i)
		cm.do(typeKeys("UNDO-ME "))
		text = convergeAll(t, ts, id, all...)
		if !strings.Contains(text, "UNDO-ME here.") {
			t.Fatalf("Cleo's typing: %q", text)
		}
		mo.placeCaret(0, 0)
		end := len([]rune(text))
		demo.placeCaret(end, end)
		together(t, map[*editor][]chromedp.Action[chromedp.Void]{
			mo:   {typeKeys("max keeps typing ")},
			demo: {typeKeys(" dee too")},
			cm:   {chromedp.Sleep(100 * time.Millisecond), shortcut("z", chromedp.ModifierCtrl)},
		})
		text = convergeAll(t, ts, id, all...)
		if strings.Contains(text, "UNDO-ME") || !strings.Contains(text, "max keeps typing ") || !strings.Contains(text, " dee too") || !strings.Contains(text, "😀 here.") {
			t.Fatalf("after Cleo's undo: %q", text)
		}

		// Max's undo (the document's own, which the binding routes Monaco's
		// to) takes back his text after Dee has typed before it, and none
		// of the others' (it may take "max keeps typing" with it: edits
		// within the example's undoGroupMs undo together).
		i = cpIndex(text, "here.")
		mo.placeCaret(i, i)
		mo.do(typeKeys("MAX-UNDO "))
		text = convergeAll(t, ts, id, all...)
		demo.placeCaret(0, 0)
		demo.do(typeKeys("Hi "))
		convergeAll(t, ts, id, all...)
		mo.do(shortcut("z", chromedp.ModifierCtrl))
		text = convergeAll(t, ts, id, all...)
		if strings.Contains(text, "MAX-UNDO") || !strings.HasPrefix(text, "Hi ") || !strings.Contains(text, "Cleo types 😀 here.") || !strings.Contains(text, " dee too") {
			t.Fatalf("after Max's undo: %q", text)
		}
	})

	t.Run("a comment made in the demo marks the same words in CodeMirror and Monaco", func(t *testing.T) {
		text := convergeAll(t, ts, id, all...)
		words := "Monaco and the demo"
		i := cpIndex(text, words)
		demo.placeCaret(i, i+len([]rune(words)))
		demo.do(
			chromedp.WaitEnabled(chromedp.CSS("#comment-btn")),
			chromedp.Click(chromedp.CSS("#comment-btn")),
			chromedp.WaitVisible(chromedp.CSS("#comment-input")),
			chromedp.SendKeys(chromedp.CSS("#comment-input"), "Which demo?"),
			chromedp.Click(chromedp.CSS("#comment-submit")),
		)
		cm.waitFor("the comment's mark", fmt.Sprintf(`(() => { const els = [...document.querySelectorAll(".cm-content [data-comment-id]")];
			return els.length > 0 && els.map((e) => e.textContent).join("") === %s && document.querySelector("#comments .thread")?.textContent.includes("Which demo?"); })()`, js(words)))
		mo.waitFor("the comment's decoration", fmt.Sprintf(`(() => { const m = tandemExample.editor.getModel();
			const d = m.getAllDecorations().find((d) => (d.options.inlineClassName ?? "").includes("tandem-comment"));
			return d && m.getValueInRange(d.range) === %s && document.querySelector(".tandem-comment") !== null; })()`, js(words)))
		// The mark stays on its words while Cleo types before them.
		cm.placeCaret(0, 0)
		cm.do(typeKeys("So "))
		convergeAll(t, ts, id, all...)
		cm.waitFor("the mark on its words", fmt.Sprintf(`[...document.querySelectorAll(".cm-content [data-comment-id]")].map((e) => e.textContent).join("") === %s`, js(words)))
	})

	if dir := os.Getenv("TANDEM_SCREENSHOTS"); dir != "" {
		editorsScreenshot(t, dir, ts, id, all)
	}

	t.Run("IME compositions", func(t *testing.T) {
		// Cleo and Max compose with an input method while Dee types at the
		// same place: nothing half-composed is sent, the compositions are
		// not broken, and all converge once they are committed.
		compose := func(text string) chromedp.Action[chromedp.Void] {
			return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				n := int64(len(utf16(text)))
				_, err := cdp.Call(ctx, tg, input.ImeSetComposition, input.ImeSetCompositionParams{Text: text, SelectionStart: n, SelectionEnd: n})
				return err
			})
		}
		text := convergeAll(t, ts, id, all...)
		i := cpIndex(text, "Fin")
		cm.placeCaret(i, i)
		j := cpIndex(text, "Max")
		mo.placeCaret(j, j)
		cm.do(compose("に"), compose("にほ"))
		mo.do(compose("か"), compose("かん"))
		cm.waitFor("composing", `tandemExample.view.state.doc.toString().includes("にほ")`)
		mo.waitFor("composing", `tandemExample.binding.text().includes("かん")`)
		demo.placeCaret(i, i)
		demo.do(typeKeys("D:"))
		demo.placeCaret(j, j)
		demo.do(typeKeys("d:"))
		text = convergeAll(t, ts, id, demo)
		if strings.ContainsAny(text, "にほかん") {
			t.Fatalf("half-composed text reached the server: %q", text)
		}
		cm.do(compose("にほん"))
		mo.do(compose("かんじ"))
		cm.waitFor("the composition intact", `tandemExample.view.composing && tandemExample.view.state.doc.toString().includes("にほん")`)
		mo.waitFor("the composition intact", `tandemExample.binding.text().includes("かんじ")`)
		cm.do(insertText("日本"))
		mo.do(insertText("漢字"))
		text = convergeAll(t, ts, id, all...)
		for _, want := range []string{"D:日本", "d:漢字"} {
			if strings.Count(text, want) != 1 {
				t.Fatalf("after the compositions: %q lacks %q", text, want)
			}
		}
	})

	t.Run("a dropped network", func(t *testing.T) {
		// Cleo's and Max's sockets close and stay down while they type; Dee
		// keeps typing. Back online, everything lands once.
		text := convergeAll(t, ts, id, all...)
		for _, e := range []*editor{cm, mo} {
			eval[bool](e.page, `(__tandemNet.drop(), true)`)
			e.waitFor("disconnected", `document.querySelector("#status").dataset.status !== "connected" && __tandemNet.open === 0`)
		}
		cm.placeCaret(0, 0)
		mo.placeCaret(len([]rune(text)), len([]rune(text)))
		demo.placeCaret(cpIndex(text, "Tandem"), cpIndex(text, "Tandem"))
		together(t, map[*editor][]chromedp.Action[chromedp.Void]{
			cm:   {typeKeys("offline Cleo 🛰 ")},
			mo:   {typeKeys(" offline Max")},
			demo: {typeKeys("online Dee ")},
		})
		if got, _ := ts.content(id, -1); strings.Contains(got, "offline") {
			t.Fatalf("the server has offline text before the network came back: %q", got)
		}
		for _, e := range []*editor{cm, mo} {
			eval[bool](e.page, `(__tandemNet.restore(), true)`)
		}
		text = convergeAll(t, ts, id, all...)
		for _, want := range []string{"offline Cleo 🛰 ", " offline Max", "online Dee "} {
			if strings.Count(text, want) != 1 {
				t.Fatalf("after reconnecting: %q has %q %d times", text, want, strings.Count(text, want))
			}
		}
	})

}

// editorsScreenshot saves the three editors side by side as editors.png:
// each with the others' carets, Max's selection and the comment.
func editorsScreenshot(t *testing.T, dir string, ts *testServer, id string, eds []*editor) {
	t.Helper()
	const w, h = 760, 560
	text := convergeAll(t, ts, id, eds...)
	carets := map[string][2]int{
		"codemirror": {cpIndex(text, "Cleo types"), cpIndex(text, "Cleo types") + len("Cleo")},
		"monaco":     {cpIndex(text, "write"), cpIndex(text, "write") + utf8.RuneCountInString("write 🖊")},
		"demo":       {cpIndex(text, "ends."), cpIndex(text, "ends.")},
	}
	for _, e := range eds {
		e.do(chromedp.EmulateViewport(w, h))
		c := carets[e.kind]
		e.placeCaret(c[0], c[1])
	}
	for _, viewer := range eds {
		for _, other := range eds {
			if other != viewer {
				viewer.sees(other, text)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // the carets' labels and highlights paint
	out := image.NewRGBA(image.Rect(0, 0, 3*w+2*8, h))
	draw.Draw(out, out.Bounds(), &image.Uniform{color.RGBA{0xcb, 0xd5, 0xe1, 0xff}}, image.Point{}, draw.Src)
	for i, e := range eds {
		ctx, cancel := context.WithTimeout(e.ctx, wait)
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			t.Fatalf("%s: screenshot: %v", e.name, err)
		}
		img, err := png.Decode(bytes.NewReader(buf))
		if err != nil {
			t.Fatal(err)
		}
		draw.Draw(out, image.Rect(i*(w+8), 0, i*(w+8)+w, h), img, img.Bounds().Min, draw.Src)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "editors.png")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}
