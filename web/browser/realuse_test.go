package browser_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// setOffline cuts the page's network (or gives it back) as the browser
// sees it when the machine loses its network: requests fail and
// navigator.onLine turns false with an offline event.
func (p *page) setOffline(off bool) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		cond := &network.Conditions{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: []*network.Conditions{cond}}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
}

// TestOfflineNoticed: when the network goes away the page says so within
// 5 s (issue 16: it said "Connected" and "Saving…" for 45 s); the edit
// made meanwhile is sent once the network is back.
func TestOfflineNoticed(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("offline", "Hello.")
	ann := newPage(t, "ann")
	ann.login(ts.URL, "Ann", 0)
	ann.openDoc("offline")
	ann.setCaret(6, 6)
	ann.do(typeKeys(" One."))
	ann.synced("Hello. One.")

	ann.setOffline(true)
	start := time.Now()
	ann.do(typeKeys(" Two."))
	ann.waitFor("the page to say it is offline", `document.querySelector("#save-state").dataset.state === "offline" && document.querySelector("#conn-status").dataset.status !== "connected"`)
	// The bound the issue asks for.
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the page noticed it was offline after %v, want within 5 s", took)
	} else {
		t.Logf("offline noticed in %v", took.Round(10*time.Millisecond))
	}
	ann.setOffline(false)
	ann.synced("Hello. One. Two.")
	if got, _ := ts.content("offline", -1); got != "Hello. One. Two." {
		t.Fatalf("the server has %q", got)
	}
}

// TestRestoreAnnounced: a restore from the history is an edit of the
// person who made it (the history credits them), the other user is told
// ("Ann restored version 1", with Undo), and what that user typed while
// it happened is kept.
func TestRestoreAnnounced(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("restore", "First draft.\n")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("restore")
	bob.openDoc("restore")
	ann.setCaret(len("First draft."), len("First draft."))
	ann.do(typeKeys(" Then a mistake."))
	converge(t, ts, "restore", ann, bob)

	// Bob is typing at the end, his edit not yet sent (his network is
	// down), while Ann restores version 1.
	bob.setOffline(true)
	bob.waitFor("offline", `document.querySelector("#save-state").dataset.state === "offline"`)
	end := len(utf16(bob.text()))
	bob.setCaret(end, end)
	bob.do(typeKeys("Bob's line."))

	ann.do(chromedp.Click(chromedp.CSS("#history-btn")), chromedp.WaitVisible(chromedp.CSS("#history-slider")))
	ann.do(chromedp.Focus(chromedp.CSS("#history-slider")), typeKeys(kb.Home), typeKeys(kb.ArrowRight))
	ann.waitFor("version 1", `document.querySelector("#history").dataset.loading === "false" && document.querySelector("#history-text").dataset.version === "1"`)
	ann.do(chromedp.Click(chromedp.CSS("#history-restore")), chromedp.Click(chromedp.CSS("#restore-yes")))
	ann.waitFor("the restore done", `!tandemApp.view.doc.pending && tandemApp.view.doc.text === "First draft.\n"`)
	ann.do(chromedp.Click(chromedp.CSS("#history-close")))

	bob.setOffline(false)
	bob.waitFor("the announcement", `[...document.querySelectorAll(".toast[data-kind=restored]")].some((e) => e.textContent.includes("Ann restored version 1") && e.querySelector("button.restore-undo"))`)
	text := converge(t, ts, "restore", ann, bob)
	if text != "First draft.\nBob's line." {
		t.Fatalf("after the restore the text is %q, want the restored version with Bob's typing kept", text)
	}
	// The history credits Ann, not the API.
	var log struct {
		Ops []struct {
			User string `json:"user"`
		} `json:"ops"`
	}
	ts.api("GET", "/api/docs/restore/ops", nil, &log)
	users := make([]string, len(log.Ops))
	for i, o := range log.Ops {
		users[i] = o.User
	}
	restoredBy := ""
	for i, u := range users {
		if strings.HasPrefix(u, "ann") {
			restoredBy = u
		}
		if i > 0 && (u == "api" || u == "") { // version 0 → 1 is the document's creation
			t.Errorf("an op credited to %q: %v", u, users)
		}
	}
	if restoredBy == "" {
		t.Fatalf("no op by Ann in %v", users)
	}
	if n := eval[int](ann, `document.querySelectorAll(".toast[data-kind=restored]").length`); n != 0 {
		t.Fatalf("Ann was told of her own restore %d times", n)
	}
}

// TestNoGhostAfterBackForward: a page left for another (into the
// back/forward cache) leaves the document at once, and comes back as one
// member when the user goes back (issue 16: ghost members for minutes).
func TestNoGhostAfterBackForward(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("ghost", "Who is here?")
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	ann.openDoc("ghost")
	bob.openDoc("ghost")
	members := `document.querySelector("#avatars").dataset.count`
	ann.waitFor("Bob here", members+` === "2"`)

	eval[bool](bob, `(addEventListener("pageshow", (e) => sessionStorage.setItem("tandem-test-persisted", String(e.persisted))), true)`)
	bob.do(chromedp.Navigate(ts.URL + "/healthz"))
	ann.waitFor("Bob gone", members+` === "1"`)
	// history.back(), not NavigateBack: a page restored from the
	// back/forward cache fires no load event to wait for.
	eval[bool](bob, `(setTimeout(() => history.back(), 0), true)`)
	bob.waitAcrossNavigation("the document page", `location.hash === "#/doc/ghost"`)
	bob.waitAcrossNavigation("the editor back", `document.querySelector("#editor")?.dataset.state === "ready" && document.querySelector("#conn-status")?.dataset.status === "connected"`)
	ann.waitFor("Bob back, once", members+` === "2" && tandemApp.view.doc.members.size === 2`)
	restored := eval[string](bob, `sessionStorage.getItem("tandem-test-persisted") ?? "no pageshow"`)
	t.Logf("back navigation restored the page from the back/forward cache: %s", restored)
}

// waitAcrossNavigation is waitFor for a page that is navigating or was
// restored from the back/forward cache (where chromedp's polling loses
// the page's context): each try is an evaluation of its own, and errors
// of a context torn down by the navigation are retried.
func (p *page) waitAcrossNavigation(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: waiting for %s (%s): %v", p.name, what, expr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling between tries
	}
}

// TestKeyToScreenLatency measures, for a small and a 1 MB document, how
// long a key typed in one page takes to show in the other's editor, and
// how long the typist's page is busy per key (until its next frame). The
// figures go to the log for the README; the only bound is a generous one
// on the 1 MB document staying usable (issue 16: "must stay responsive").
func TestKeyToScreenLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("latency measurement skipped in -short")
	}
	ts := startServer(t)
	var sb strings.Builder
	for i := 0; sb.Len() < 1_000_000-64; i++ {
		fmt.Fprintf(&sb, "Line %d of a long document, with some words to wrap.\n", i)
	}
	big := sb.String()
	ts.createDoc("small", "A short note.\n")
	ts.createDoc("large", big)
	ann := newPage(t, "ann")
	bob := newPage(t, "bob")
	ann.login(ts.URL, "Ann", 0)
	bob.login(ts.URL, "Bob", 1)
	for _, tc := range []struct {
		id   string
		size int
	}{{"small", len("A short note.\n")}, {"large", len(big)}} {
		ann.openDoc(tc.id)
		bob.openDoc(tc.id)
		// In the middle of the text: the worst place for a renderer that
		// redraws everything after the caret.
		mid := len(utf16(ann.text())) / 2
		ann.setCaret(mid, mid)
		eval[bool](bob, `(() => {
			window.__seen = [];
			const doc = tandemApp.view.doc;
			doc.on("change", (e) => { if (!e.local) requestAnimationFrame(() => window.__seen.push(Date.now())); });
			return true;
		})()`)
		eval[bool](ann, `(() => {
			window.__keys = []; window.__busy = [];
			document.querySelector("#editor-input").addEventListener("keydown", () => {
				const t = Date.now(), p = performance.now();
				window.__keys.push(t);
				requestAnimationFrame(() => window.__busy.push(performance.now() - p));
			}, { capture: true });
			return true;
		})()`)
		const keys = 10
		for i := 0; i < keys; i++ {
			ann.do(typeKeys("x"))
			bob.waitForLong(fmt.Sprintf("key %d at Bob's", i+1), fmt.Sprintf(`window.__seen.length >= %d`, i+1), 30*time.Second)
		}
		sent := eval[[]float64](ann, `window.__keys`)
		busy := eval[[]float64](ann, `window.__busy`)
		seen := eval[[]float64](bob, `window.__seen`)
		lat := make([]float64, 0, keys)
		for i := 0; i < keys && i < len(sent) && i < len(seen); i++ {
			lat = append(lat, seen[i]-sent[i])
		}
		medLat, medBusy := median(lat), median(busy)
		t.Logf("key-to-screen latency, %s document (%d bytes): median %.0f ms (max %.0f) over %d keys; typist's page busy %.0f ms per key (median)", tc.id, tc.size, medLat, maxOf(lat), len(lat), medBusy)
		if tc.id == "large" && medLat > 5000 {
			t.Fatalf("a 1 MB document is not responsive: median key-to-screen %.0f ms", medLat)
		}
		ann.do(chromedp.Navigate(ann.location() + "#/"))
		bob.do(chromedp.Navigate(bob.location() + "#/"))
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// TestGuestsAndAnnouncements: in development mode two browsers that pick
// the same name and colour are two people (issue 16: one became the
// other); colour swatches have names, not hex codes; the save state's live
// region speaks only when the state changes, not at every version.
func TestGuestsAndAnnouncements(t *testing.T) {
	ts := startServer(t)
	ts.createDoc("same", "Hi.")
	one := newPage(t, "one")
	two := newPage(t, "two")
	one.do(chromedp.Navigate(ts.URL + "/"))
	one.waitFor("the name picker", `document.querySelector("#name-picker") !== null`)
	if names := eval[string](one, `[...document.querySelectorAll("#name-picker .swatch .sr-only")].map((e) => e.textContent).join(",")`); strings.Contains(names, "#") || !strings.Contains(names, "Pink") {
		t.Fatalf("the swatches read %q", names)
	}
	one.login(ts.URL, "Ann", 0)
	two.login(ts.URL, "Ann", 0)
	idOne := eval[string](one, `tandemApp.client.user.id`)
	idTwo := eval[string](two, `tandemApp.client.user.id`)
	if idOne == idTwo {
		t.Fatalf("two browsers that picked the same name are one user %q", idOne)
	}
	one.openDoc("same")
	two.openDoc("same")
	one.waitFor("two people", `document.querySelector("#avatars").dataset.count === "2"`)

	if role := eval[string](one, `document.querySelector("#save-state").getAttribute("role") ?? ""`); role != "" {
		t.Fatalf("#save-state is a live region (role %q): it would read every version", role)
	}
	before := eval[string](one, `document.querySelector("#save-announce").textContent`)
	one.setCaret(3, 3)
	one.do(typeKeys(" One. Two."))
	one.synced("Hi. One. Two.")
	if after := eval[string](one, `document.querySelector("#save-announce").textContent`); after != before {
		t.Fatalf("typing changed the announcement from %q to %q", before, after)
	}
}
