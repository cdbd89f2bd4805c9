package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/web"
)

// registerStorageMetrics exposes the committer's counters.
func (m *Server) registerStorageMetrics() {
	stats := m.DB.Stats
	m.Metrics.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_storage_commits_total",
			Help: "Write transactions (one fsync each unless nosync)."}, func() float64 { return float64(stats().Commits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_storage_requests_total",
			Help: "Write requests committed; divided by commits, the average group size."}, func() float64 { return float64(stats().Requests) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_storage_commit_seconds_total",
			Help: "Time spent in write transactions, fsync included; divided by commits, the average commit latency."},
			func() float64 { return stats().CommitTime.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_storage_commit_group_max",
			Help: "The largest number of requests in one commit."}, func() float64 { return float64(stats().MaxGroup) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_storage_commit_seconds_max",
			Help: "The longest commit."}, func() float64 { return stats().MaxCommitTime.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_storage_journal_ops",
			Help: "Ops in the journal, not yet moved into the op log."}, func() float64 { return float64(stats().Journal) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_storage_journal_drains_total",
			Help: "Times the journal was moved into the op log."}, func() float64 { return float64(stats().JournalDrains) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_storage_packed_ops_total",
			Help: "Ops packed into history blocks."}, func() float64 { return float64(stats().PackedOps) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_open_documents",
			Help: "Documents loaded in memory."}, func() float64 {
			if m.Docs == nil {
				return 0
			}
			return float64(m.Docs.Loaded())
		}),
	)
}

// statsChannel carries the server's figures. Its history lives in memory
// (liveHistory): publishing them every second writes nothing to disk.
const statsChannel = "system:stats"

// Stats is what the server publishes every second on system:stats.
type Stats struct {
	TS             string  `json:"ts"`
	Connections    int     `json:"connections"`
	Subscriptions  int     `json:"subscriptions"`
	OpenDocuments  int     `json:"open_documents"`
	OpsPerSec      float64 `json:"ops_per_sec"`
	MessagesPerSec float64 `json:"messages_per_sec"`
	AckP99Ms       float64 `json:"ack_p99_ms"`
	HeapBytes      uint64  `json:"heap_bytes"`
	Goroutines     int     `json:"goroutines"`
	CommitsPerSec  float64 `json:"commits_per_sec"`
	UptimeSec      int64   `json:"uptime_sec"`
	// Documents lists the busiest loaded documents (at most 10): ops per
	// second over the last second, and members.
	Documents []DocActivity `json:"documents"`
	// ActiveUsers counts connected users; Users names up to 20 of them.
	ActiveUsers int              `json:"active_users"`
	Users       []web.ActiveUser `json:"users"`
}

// DocActivity is one document's line in Stats.
type DocActivity struct {
	ID        string  `json:"id"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Members   int     `json:"members"`
}

// statsPublisher publishes Stats on system:stats every second.
type statsPublisher struct {
	quit chan struct{}
	wg   sync.WaitGroup
}

func startStats(m *Server) *statsPublisher {
	p := &statsPublisher{quit: make(chan struct{})}
	p.wg.Add(1)
	go p.run(m)
	return p
}

func (p *statsPublisher) stop() {
	close(p.quit)
	p.wg.Wait()
}

func (p *statsPublisher) run(m *Server) {
	defer p.wg.Done()
	start := time.Now()
	interval := m.statsInterval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastOps, lastMsgs, lastCommits float64
	lastDocOps := map[string]int64{}
	last := time.Now()
	for {
		select {
		case <-p.quit:
			return
		case now := <-tick.C:
			secs := now.Sub(last).Seconds()
			last = now
			ops := counterValue(m.Metrics.OpsApplied)
			msgs := counterValue(m.Metrics.Published)
			commits := m.be.commits()
			p99, _ := m.Metrics.TakeAckWindow()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			st := Stats{
				TS:             now.UTC().Format(proto.TimeLayout),
				Connections:    m.Web.Conns(),
				Subscriptions:  m.Web.Subscriptions(),
				OpenDocuments:  m.Docs.Loaded(),
				OpsPerSec:      (ops - lastOps) / secs,
				MessagesPerSec: (msgs - lastMsgs) / secs,
				CommitsPerSec:  (commits - lastCommits) / secs,
				AckP99Ms:       float64(p99.Microseconds()) / 1000,
				HeapBytes:      ms.HeapAlloc,
				Goroutines:     runtime.NumGoroutine(),
				UptimeSec:      int64(now.Sub(start).Seconds()),
			}
			lastOps, lastMsgs, lastCommits = ops, msgs, commits
			docOps := map[string]int64{}
			for _, d := range m.Docs.Stats() {
				docOps[d.ID] = d.Ops
				prev, seen := lastDocOps[d.ID]
				if !seen || prev > d.Ops {
					prev = 0
				}
				st.Documents = append(st.Documents, DocActivity{ID: d.ID, OpsPerSec: float64(d.Ops-prev) / secs, Members: d.Members})
			}
			lastDocOps = docOps
			slices.SortFunc(st.Documents, func(a, b DocActivity) int {
				if c := cmp.Compare(b.OpsPerSec, a.OpsPerSec); c != 0 {
					return c
				}
				return cmp.Compare(b.Members, a.Members)
			})
			st.Documents = st.Documents[:min(len(st.Documents), 10)]
			users := m.Web.ActiveUsers()
			st.ActiveUsers = len(users)
			for _, u := range users {
				st.Users = append(st.Users, u)
			}
			slices.SortFunc(st.Users, func(a, b web.ActiveUser) int { return cmp.Compare(a.User.Name, b.User.Name) })
			st.Users = st.Users[:min(len(st.Users), 20)]
			data, _ := json.Marshal(st)
			// Kept with offsets (not ephemeral) so that a dashboard opening
			// now sees the last minute (the system namespace keeps 60
			// messages), but in memory, not on disk (liveHistory).
			m.Hub.Publish(session.Publication{Channel: statsChannel, Event: "stats", Data: data, From: proto.From{User: "system"}},
				func(_ uint64, err error) {
					if err != nil && !errors.Is(err, session.ErrClosed) {
						m.Log.Error().Err(err).Msg("publish stats")
					}
				})
		}
	}
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var out dto.Metric
	if err := c.Write(&out); err != nil || out.Counter == nil {
		return 0
	}
	return out.Counter.GetValue()
}
