package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/client"
)

// FanoutConfig is the fanout scenario: Subscribers connections on one
// channel, one publisher at Rate messages a second for Duration, through
// the HTTP API (as a backend would).
type FanoutConfig struct {
	Subscribers int
	Rate        float64
	Duration    time.Duration
	// PayloadBytes pads each message's data to about this size.
	PayloadBytes int
	// GoClients makes the subscribers full Go clients (package client)
	// instead of light protocol readers; their per-frame decoding then
	// weighs on the shared cores.
	GoClients bool
}

// fanSub is one subscriber's tally. The client runs its handler on one
// goroutine, so only mu guards against the reader at the end.
type fanSub struct {
	mu        sync.Mutex
	last      uint64
	count     int
	dup, gaps int
	lat       []time.Duration
	closed    error
	closeCode int
}

// Fanout runs the fanout scenario.
func Fanout(ctx context.Context, opts Options, cfg FanoutConfig) (*Result, error) {
	readers := "light"
	if cfg.GoClients {
		readers = "go-client"
	}
	res := newResult("fanout", map[string]any{"subscribers": cfg.Subscribers, "rate": cfg.Rate, "duration": cfg.Duration.String(),
		"payload_bytes": cfg.PayloadBytes, "readers": readers})
	limit := raiseFileLimit()
	if opts.Server == "" && !opts.ServerProcess && limit > 0 && limit < uint64(2*cfg.Subscribers+500) {
		// Both ends of every connection would not fit this process's
		// file limit: run the server as a child with its own.
		opts.ServerProcess = true
		res.Notes = append(res.Notes, "server in a child process (file limit)")
	}
	tg, stop, err := start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer stop()
	channel := fmt.Sprintf("bench:fanout-%d", time.Now().UnixNano())

	subs := make([]*fanSub, cfg.Subscribers)
	clients := make([]*client.Client, cfg.Subscribers)
	lites := make([]*liteSub, cfg.Subscribers)
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
		for _, l := range lites {
			if l != nil {
				l.close()
			}
		}
	}()
	// Connect in parallel, a bounded number at a time.
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var connErr atomic.Value
	for i := range subs {
		subs[i] = &fanSub{}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s := subs[i]
			if !cfg.GoClients {
				l, err := dialLite(ctx, tg.wsURL, opts.Token, fmt.Sprintf("sub%d", i), channel, s)
				if err != nil {
					connErr.Store(err)
					return
				}
				lites[i] = l
				return
			}
			c, err := client.Dial(ctx, client.Config{URL: tg.wsURL, Token: opts.Token, User: fmt.Sprintf("sub%d", i), NoReconnect: true,
				OnStatus: func(st client.Status, err error) {
					if st == client.StatusDisconnected {
						s.mu.Lock()
						s.closed = err
						s.mu.Unlock()
					}
				}})
			if err != nil {
				connErr.Store(err)
				return
			}
			clients[i] = c
			_, err = c.Subscribe(ctx, channel, func(m client.Message) {
				var body struct {
					T int64 `json:"t"`
				}
				_ = json.Unmarshal(m.Data, &body)
				now := time.Now()
				s.mu.Lock()
				switch {
				case m.Offset <= s.last:
					s.dup++
				case m.Offset != s.last+1:
					s.gaps++
				}
				if m.Offset > s.last {
					s.last = m.Offset
				}
				s.count++
				if body.T > 0 {
					s.lat = append(s.lat, now.Sub(time.Unix(0, body.T)))
				}
				s.mu.Unlock()
			})
			if err != nil {
				connErr.Store(err)
			}
		}()
	}
	wg.Wait()
	if e, ok := connErr.Load().(error); ok {
		return nil, fmt.Errorf("fanout: connect subscribers: %w", e)
	}

	// Publish through the HTTP API at the rate, with a few requests in
	// flight so that the rate is not bounded by one commit's latency.
	pad := bytes.Repeat([]byte("x"), max(cfg.PayloadBytes-40, 0))
	total := int(cfg.Rate * cfg.Duration.Seconds())
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	jobs := make(chan int)
	var published, pubErrs atomic.Int64
	var pubMu sync.Mutex
	var pubLat []time.Duration // request to response, per publish
	var pwg sync.WaitGroup
	for range 16 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for range jobs {
				body, _ := json.Marshal(map[string]any{"channel": channel, "event": "tick",
					"data": map[string]any{"t": time.Now().UnixNano(), "pad": string(pad)}})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.httpURL+"/api/broadcast", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if opts.APIKey != "" {
					req.Header.Set("Authorization", "Bearer "+opts.APIKey)
				}
				t0 := time.Now()
				resp, err := httpc.Do(req)
				pubMu.Lock()
				pubLat = append(pubLat, time.Since(t0))
				pubMu.Unlock()
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						published.Add(1)
						continue
					}
				}
				pubErrs.Add(1)
			}
		}()
	}
	cpu := startCPU(tg)
	startT := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	next := startT
	for i := range total {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	pwg.Wait()
	sendSecs := time.Since(startT).Seconds()
	// Wait for the deliveries to land (bounded).
	want := int(published.Load())
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, s := range subs {
			s.mu.Lock()
			ok := s.count >= want || s.closed != nil
			s.mu.Unlock()
			if !ok {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(startT).Seconds()
	cpu.stop()

	var lat []time.Duration
	delivered, dropped, short, dups, gaps := 0, 0, 0, 0, 0
	for _, s := range subs {
		s.mu.Lock()
		delivered += s.count
		dups += s.dup
		gaps += s.gaps
		lat = append(lat, s.lat...)
		var ce *client.CloseError
		switch {
		case s.closed != nil && (s.closeCode == 4010 || errors.As(s.closed, &ce) && ce.Code == 4010):
			dropped++
		case s.count < want:
			short++
		}
		s.mu.Unlock()
	}
	sortDurations(lat)
	res.Figures["published"] = float64(want)
	res.Figures["publish_errors"] = float64(pubErrs.Load())
	res.Figures["published_per_sec"] = float64(want) / sendSecs
	res.Figures["deliveries"] = float64(delivered)
	res.Figures["deliveries_per_sec"] = float64(delivered) / elapsed
	res.Figures["latency_p50_ms"] = percentile(lat, 50)
	res.Figures["latency_p99_ms"] = percentile(lat, 99)
	res.Figures["latency_max_ms"] = percentile(lat, 100)
	res.Figures["dropped_slow"] = float64(dropped)
	sortDurations(pubLat)
	res.Figures["publish_p50_ms"] = percentile(pubLat, 50)
	res.Figures["publish_p99_ms"] = percentile(pubLat, 99)
	cpu.report(res, "message", float64(want), float64(delivered))
	if dups > 0 || gaps > 0 {
		res.fail("%d duplicate and %d out-of-order deliveries", dups, gaps)
	}
	if short > 0 {
		res.fail("%d subscribers missed messages without being dropped", short)
	}
	if pubErrs.Load() > 0 {
		res.fail("%d publishes failed", pubErrs.Load())
	}
	res.Seconds = elapsed
	return res, nil
}
