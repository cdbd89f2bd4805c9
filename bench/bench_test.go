package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/internal/trace"
)

// The scenarios at toy sizes: each must run, check itself and report its
// figures. (The figures are measured by `tandem bench`, not here.)

func testOptions(t *testing.T) Options {
	return Options{NoSync: true, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)}
}

func checkResult(t *testing.T, r *Result, err error, figures ...string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Failures) > 0 {
		t.Fatalf("%s failed its checks: %v", r.Scenario, r.Failures)
	}
	for _, f := range figures {
		if v, ok := r.Figures[f]; !ok || v <= 0 {
			t.Errorf("%s: figure %s = %v, want > 0 (all: %v)", r.Scenario, f, v, r.Figures)
		}
	}
}

func TestEditorsScenario(t *testing.T) {
	ctx := context.Background()
	r, err := Editors(ctx, testOptions(t), EditorsConfig{Docs: 2, Clients: 3, Duration: time.Second})
	checkResult(t, r, err, "committed_ops", "committed_ops_per_sec", "ack_p99_ms")
	r, err = Editors(ctx, testOptions(t), EditorsConfig{Docs: 1, Clients: 3, Rate: 50, Duration: time.Second})
	checkResult(t, r, err, "committed_ops", "edits")
}

// TestClusterScenario: the editors on one node and on three nodes over an
// embedded NATS server, side by side, at toy sizes.
func TestClusterScenario(t *testing.T) {
	var results []*Result
	err := Cluster(context.Background(), testOptions(t), ClusterConfig{Nodes: 3, Duration: 2 * time.Second, Shapes: []Shape{{1, 6}, {4, 3}}}, func(r *Result, err error) error {
		checkResult(t, r, err, "committed_ops", "ack_p99_ms")
		results = append(results, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results, want 4 (two shapes, single node and cluster)", len(results))
	}
	for _, r := range []*Result{results[1], results[3]} {
		if r.Params["nodes"] != 3 || r.Params["store"] != "jetstream" {
			t.Fatalf("cluster result: %v", r.Params)
		}
		if _, ok := r.Figures["retries"]; !ok {
			t.Fatalf("cluster result without retries: %v", r.Figures)
		}
	}
}

func TestFanoutScenario(t *testing.T) {
	r, err := Fanout(context.Background(), testOptions(t), FanoutConfig{Subscribers: 20, Rate: 50, Duration: time.Second, PayloadBytes: 64})
	checkResult(t, r, err, "deliveries", "latency_p99_ms")
	if got, want := r.Figures["deliveries"], r.Figures["published"]*20; got != want {
		t.Errorf("%v deliveries, want %v", got, want)
	}
}

func TestTraceScenario(t *testing.T) {
	if _, err := trace.Dir(); err != nil {
		t.Skip(err)
	}
	r, err := Trace(context.Background(), TraceConfig{Rounds: 1})
	checkResult(t, r, err, "automerge-paper_ns_per_edit", "seph-blog1_ns_per_edit")
}

func TestIdleScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tandem binary")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "tandem")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tandem")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	opts := testOptions(t)
	opts.Binary = bin
	r, err := Idle(context.Background(), opts, IdleConfig{Conns: 50})
	checkResult(t, r, err, "connections")

	// The editors against that binary in a child process, whose config
	// file gets --server-config's keys: a broadcast window for documents
	// of two members or more, which the editors must converge through.
	opts.ServerProcess = true
	opts.ServerConfig = `{"doc_broadcast": {"window": "20ms", "members": 2}}`
	r, err = Editors(context.Background(), opts, EditorsConfig{Docs: 1, Clients: 3, Duration: time.Second})
	checkResult(t, r, err, "committed_ops", "server_cpu_us_per_delivery")
	opts.ServerConfig = `{"doc_broadcast": `
	if _, err := Editors(context.Background(), opts, EditorsConfig{Docs: 1, Clients: 3, Duration: time.Second}); err == nil {
		t.Fatal("a server config that is not JSON was taken")
	}
}

func TestReport(t *testing.T) {
	r := newResult("x", map[string]any{"n": 3})
	r.Figures["ops_per_sec"] = 1234.5
	r.fail("broken %d", 1)
	var table, js bytes.Buffer
	WriteTable(&table, []*Result{r})
	if !strings.Contains(table.String(), "ops_per_sec") || !strings.Contains(table.String(), "FAILED: broken 1") {
		t.Errorf("table:\n%s", table.String())
	}
	if err := WriteJSON(&js, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Machine map[string]any `json:"machine"`
		Results []Result       `json:"results"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != 1 || back.Results[0].Figures["ops_per_sec"] != 1234.5 {
		t.Errorf("json %s: %v", js.String(), err)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		if _, err := rss(os.Getpid()); err != nil {
			t.Errorf("rss: %v", err)
		}
	}
	if _, err := trace.Load(t.TempDir(), "nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing trace: %v", err)
	}
}

// TestPresenceScenario: 500 members join one full-presence channel, then
// leave, rejoin and change their state at random; every member's view of
// the room converges to the room (all members tracked, each reading the
// whole list at the end). Bounded: the scenario's own waits are.
func TestPresenceScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("500 connections")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, err := Presence(ctx, testOptions(t), PresenceConfig{Conns: 500, Churn: 200, Track: -1})
	if r != nil {
		t.Logf("notes: %v", r.Notes)
	}
	checkResult(t, r, err, "join_seconds", "presence_frames_per_member_mean")
	if r.Figures["members_in_count_mode"] != 0 {
		t.Errorf("%v members in count mode in a room that never switches", r.Figures["members_in_count_mode"])
	}
	t.Logf("%v", r.Figures)
}

// TestPresenceScenarioSwitch: 1,100 members join a full-presence channel
// with the default switch, so it goes to count mode past 1,000; every
// member's count converges, also after churn (the tracked members are told
// of the switch and keep no list).
func TestPresenceScenarioSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("1,100 connections")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, err := Presence(ctx, testOptions(t), PresenceConfig{Conns: 1100, Churn: 100, Switch: true})
	checkResult(t, r, err, "join_seconds", "presence_frames_per_member_mean")
	if r.Figures["members_in_count_mode"] < 1000 {
		t.Errorf("%v members were told of count mode, want every member", r.Figures["members_in_count_mode"])
	}
	t.Logf("%v", r.Figures)
}

func TestHistoryScenario(t *testing.T) {
	if _, err := trace.Dir(); err != nil {
		t.Skip(err)
	}
	r, err := History(context.Background(), testOptions(t), HistoryConfig{Edits: 2000, Reads: 1})
	checkResult(t, r, err, "ops", "bytes_per_op", "read_ms", "compacted_bytes")
	if r.Figures["ops"] != 2000 {
		t.Errorf("%v ops, want 2000", r.Figures["ops"])
	}
}
