// Package metrics holds the server's Prometheus metrics (served at
// /metrics) and the short windows the system dashboard reads (ops and
// messages per second, p99 ack latency). Every method is safe for
// concurrent use. Packages that take a *Metrics make their own with New when
// given nil, so tests need not care.
package metrics

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of figures the server keeps.
type Metrics struct {
	Registry *prometheus.Registry

	Connections      prometheus.Gauge
	Subscriptions    prometheus.Gauge
	OpsApplied       prometheus.Counter
	AckLatency       prometheus.Histogram
	MessagesIn       prometheus.Counter // frames received
	MessagesOut      prometheus.Counter // objects sent (a frame may batch several)
	BytesOut         prometheus.Counter
	Published        prometheus.Counter // channel messages published
	SlowReaderCloses prometheus.Counter
	RateLimited      prometheus.Counter
	WebhookSent      *prometheus.CounterVec // by outcome: ok, failed, dropped
	// ConnectionsRefused counts WebSocket connections refused at a cap, by
	// reason: total (the server's cap) or per_ip (one address's).
	ConnectionsRefused *prometheus.CounterVec

	mu   sync.Mutex      // guards acks
	acks []time.Duration // ack latencies since the last Window
}

// New returns a Metrics with every metric registered in its own registry,
// together with Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tandem_connections", Help: "Open WebSocket connections."}),
		Subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tandem_subscriptions", Help: "Channel subscriptions across all connections."}),
		OpsApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_ops_applied_total", Help: "Document operations applied and made durable."}),
		AckLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tandem_op_ack_latency_seconds", Help: "From receiving an op to acknowledging it (durable).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}}),
		MessagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_messages_in_total", Help: "Client frames received."}),
		MessagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_messages_out_total", Help: "Server messages sent to clients."}),
		BytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_bytes_out_total", Help: "Bytes of server messages sent to clients."}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_channel_messages_published_total", Help: "Channel messages published."}),
		SlowReaderCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_slow_reader_closes_total", Help: "Connections closed because their send queue overflowed (4010)."}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_rate_limited_total", Help: "Requests refused by a rate limit."}),
		WebhookSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_webhook_deliveries_total", Help: "Webhook deliveries by outcome."}, []string{"outcome"}),
		ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_connections_refused_total", Help: "WebSocket connections refused at a connection cap (close 1013), by reason: total or per_ip."},
			[]string{"reason"}),
	}
	m.Registry.MustRegister(m.Connections, m.Subscriptions, m.OpsApplied, m.AckLatency, m.MessagesIn,
		m.MessagesOut, m.BytesOut, m.Published, m.SlowReaderCloses, m.RateLimited, m.WebhookSent, m.ConnectionsRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, reason := range []string{"total", "per_ip"} {
		m.ConnectionsRefused.WithLabelValues(reason) // shown as 0 until the first
	}
	return m
}

// ObserveAck records one op's ack latency.
func (m *Metrics) ObserveAck(d time.Duration) {
	if m == nil {
		return
	}
	m.OpsApplied.Inc()
	m.AckLatency.Observe(d.Seconds())
	m.mu.Lock()
	if len(m.acks) < 1<<16 { // bound the window under extreme load
		m.acks = append(m.acks, d)
	}
	m.mu.Unlock()
}

// TakeAckWindow returns the p99 of the ack latencies recorded since the
// last call, and how many there were, and starts a new window.
func (m *Metrics) TakeAckWindow() (p99 time.Duration, n int) {
	if m == nil {
		return 0, 0
	}
	m.mu.Lock()
	acks := m.acks
	m.acks = make([]time.Duration, 0, len(acks))
	m.mu.Unlock()
	if len(acks) == 0 {
		return 0, 0
	}
	slices.Sort(acks)
	return acks[(len(acks)*99)/100], len(acks)
}
