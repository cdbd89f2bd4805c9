// Package browser_test drives the bundled web app (web/static) in a real
// headless Chromium through the DevTools protocol (chromedp), against the
// real server on 127.0.0.1:0.
//
// Chromium comes from Debian's package (scripts/install-chromium.sh). When
// it is missing the tests skip, unless TANDEM_REQUIRE_BROWSER is set (CI
// sets it), when they fail. TANDEM_SCREENSHOTS=dir saves screenshots of
// the app there; TANDEM_CHROMIUM overrides the browser's path.
package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

// wait bounds every condition a test waits for.
const wait = 20 * time.Second

var (
	chromiumPath string // "" when there is none

	browserOnce   sync.Once
	browserCtx    context.Context // the browser; tabs are children
	browserErr    error
	browserCancel = func() {}
	allocCancel   = func() {}
)

func TestMain(m *testing.M) {
	chromiumPath = findChromium()
	code := m.Run()
	browserCancel()
	allocCancel()
	os.Exit(code)
}

func findChromium() string {
	if p := os.Getenv("TANDEM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needBrowser skips the test when Chromium is missing, or fails it when
// TANDEM_REQUIRE_BROWSER is set; it returns the running browser's context.
func needBrowser(t *testing.T) context.Context {
	t.Helper()
	if chromiumPath == "" {
		if os.Getenv("TANDEM_REQUIRE_BROWSER") != "" {
			t.Fatal("chromium is not installed and TANDEM_REQUIRE_BROWSER is set: run scripts/install-chromium.sh")
		}
		t.Skip("chromium is not installed: run scripts/install-chromium.sh to run the browser tests (set TANDEM_REQUIRE_BROWSER=1 to fail instead of skipping)")
	}
	browserOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tandem-chromium-")
		if err != nil {
			browserErr = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1280, 800),
			// The machine has no internet: without these Chromium waits on
			// the network at start.
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("disable-extensions", true),
			chromedp.Flag("disable-default-apps", true),
			chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication"),
			chromedp.Flag("no-proxy-server", true),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.Flag("font-render-hinting", "none"),
		}
		var actx context.Context
		actx, allocCancel = chromedp.NewExecAllocator(context.Background(), opts...)
		browserCtx, browserCancel = chromedp.NewContext(actx)
		browserErr = chromedp.Do(browserCtx) // start it
		if browserErr != nil {
			_ = os.RemoveAll(dir)
			return
		}
		prev := allocCancel
		allocCancel = func() {
			prev()
			_ = os.RemoveAll(dir)
		}
	})
	if browserErr != nil {
		t.Fatalf("start chromium %s: %v", chromiumPath, browserErr)
	}
	return browserCtx
}

// page is one tab in its own browser context (its own cookies and
// localStorage: a separate user), 1280×800.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string

	mu   sync.Mutex // guards logs
	logs []string
}

// newPage opens a tab in a fresh browser context; the test's cleanup closes it.
func newPage(t *testing.T, name string) *page {
	t.Helper()
	bctx := needBrowser(t)
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	p := &page{t: t, ctx: ctx, name: name}
	msgs := chromedp.Console(ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		cancel()
		t.Fatalf("%s: open tab: %v", name, err)
	}
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.logs = append(p.logs, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.String()))
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			p.mu.Lock()
			for _, l := range p.logs {
				t.Logf("%s console: %s", name, l)
			}
			p.mu.Unlock()
		}
		cancel()
	})
	return p
}

// do runs actions, failing the test on error.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait+10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy; what says what
// is awaited, for the failure message.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(wait)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s (%s): %v\npage: %s", p.name, what, expr, err, p.describe())
	}
}

// describe returns what the page shows, for failure messages.
func (p *page) describe() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const q = (s) => document.querySelector(s);
		const out = {url: location.href, status: q("#conn-status")?.textContent, main: (q("main")?.innerText ?? "").slice(0, 1500)};
		if (q("#editor")) Object.assign(out, {editor: q("#editor").dataset, text: q("#editor-input").value.slice(0, 1500), marks: window.tandemApp?.view?.editor?.marks?.slice(0, 20)});
		return JSON.stringify(out, null, 1);
	})()`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// screenshot saves the viewport as name.png in $TANDEM_SCREENSHOTS, if set.
func (p *page) screenshot(name string) {
	p.t.Helper()
	p.saveScreenshot(name, chromedp.CaptureScreenshot())
}

// screenshotFull saves the whole page, scrolled to the top.
func (p *page) screenshotFull(name string) {
	p.t.Helper()
	if os.Getenv("TANDEM_SCREENSHOTS") == "" {
		return
	}
	eval[bool](p, `(window.scrollTo(0, 0), document.activeElement?.blur(), true)`)
	p.saveScreenshot(name, chromedp.FullScreenshot(100))
}

func (p *page) saveScreenshot(name string, shot chromedp.Action[[]byte]) {
	p.t.Helper()
	dir := os.Getenv("TANDEM_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	buf, err := chromedp.Run(ctx, shot)
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", path)
}

// login opens the app and picks a name in the development-mode picker
// (colour: the palette entry colour), then waits for the connection.
func (p *page) login(base, name string, colour int) {
	p.t.Helper()
	p.do(
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#pick-name")),
		chromedp.SendKeys(chromedp.CSS("#pick-name"), name),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#name-picker input[name=color][value="%d"]`, colour))),
		chromedp.Click(chromedp.CSS("#pick-go")),
	)
	p.waitFor("connected", `document.querySelector("#conn-status").dataset.status === "connected"`)
}

// openDoc goes to a document and waits until the editor has loaded it.
func (p *page) openDoc(id string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.location() + "#/doc/" + url.PathEscape(id)))
	p.waitFor("editor ready", `document.querySelector("#editor")?.dataset.state === "ready" && !document.querySelector("#editor-input").readOnly`)
}

func (p *page) location() string {
	u := eval[string](p, "location.origin + location.pathname")
	return u
}

// text returns the editor's text.
func (p *page) text() string {
	p.t.Helper()
	return eval[string](p, `document.querySelector("#editor-input").value`)
}

// setCaret focuses the editor and selects [from, to) in UTF-16 units.
func (p *page) setCaret(from, to int) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`(() => { const ta = document.querySelector("#editor-input"); ta.focus(); ta.setSelectionRange(%d, %d); ta.dispatchEvent(new Event("select")); return true; })()`, from, to))
}

// testServer is the real server on 127.0.0.1 (server/servertest), with
// the HTTP API at hand; its URL is the server's http:// base.
type testServer struct {
	*servertest.Server
	t   *testing.T
	URL string // http://127.0.0.1:port, stable across restarts
}

// serverConfig is the real server's configuration.
type serverConfig = server.Config

// startServer starts a development-mode server; the test's cleanup stops it.
func startServer(t *testing.T) *testServer { return startServerWith(t, nil) }

// startServerWith starts a server with the configuration edited by edit.
func startServerWith(t *testing.T, edit func(*serverConfig)) *testServer {
	t.Helper()
	s := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		if edit != nil {
			edit(c)
		}
	}))
	return &testServer{Server: s, t: t, URL: s.HTTP}
}

// api calls the HTTP API (open in development mode) and decodes the answer.
func (ts *testServer) api(method, path string, body, out any) {
	ts.t.Helper()
	ts.apiAuth(method, path, "", body, out)
}

// apiAuth is api with a Bearer token.
func (ts *testServer) apiAuth(method, path, token string, body, out any) {
	ts.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&e)
		ts.t.Fatalf("%s %s: %s %v", method, path, resp.Status, e)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			ts.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// content returns a document's text at version v (-1: the head).
func (ts *testServer) content(id string, v int) (string, int) {
	ts.t.Helper()
	path := "/api/docs/" + url.PathEscape(id)
	if v >= 0 {
		path += fmt.Sprintf("?version=%d", v)
	}
	var r struct {
		Content string `json:"content"`
		Version int    `json:"version"`
	}
	ts.api("GET", path, nil, &r)
	return r.Content, r.Version
}

func (ts *testServer) createDoc(id, content string) {
	ts.t.Helper()
	ts.api("POST", "/api/docs", map[string]string{"id": id, "content": content}, nil)
}

func (ts *testServer) createDocAuth(id, content, token string) {
	ts.t.Helper()
	ts.apiAuth("POST", "/api/docs", token, map[string]string{"id": id, "content": content}, nil)
}
