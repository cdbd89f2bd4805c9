package hooks

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Caller's Prometheus collectors. Every hook that is on
// has its children resolved at New, so a call only adds and observes.
type metrics struct {
	calls     *prometheus.CounterVec   // tandem_hook_calls_total{hook}
	duration  *prometheus.HistogramVec // tandem_hook_duration_seconds{hook}
	refusals  *prometheus.CounterVec   // tandem_hook_refusals_total{hook}
	failures  *prometheus.CounterVec   // tandem_hook_failures_total{hook,kind}
	inFlight  *prometheus.GaugeVec     // tandem_hook_in_flight{hook}
	pending   prometheus.Gauge         // tandem_hook_doc_store_pending
	dropped   prometheus.Counter       // tandem_hook_doc_store_dropped_total
	abandoned prometheus.Counter       // tandem_hook_doc_store_abandoned_total
}

func newMetrics() *metrics {
	return &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_hook_calls_total", Help: "Hook calls, by hook (doc_store: each attempt), a call that found no free slot included."},
			[]string{"hook"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tandem_hook_duration_seconds", Help: "Time from a hook call's start (waiting for a slot included) to its answer or failure, by hook.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"hook"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_hook_refusals_total", Help: "Answers in which the backend refused the request, by hook."},
			[]string{"hook"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_hook_failures_total", Help: "Hook calls without a valid answer, by hook and kind: timeout, down, bad_answer, overloaded, canceled."},
			[]string{"hook", "kind"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tandem_hook_in_flight", Help: "Requests to the application's backend in flight now, by hook (waiting for a slot excluded)."},
			[]string{"hook"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tandem_hook_doc_store_pending", Help: "Documents whose latest content the doc_store hook has not yet stored."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_hook_doc_store_dropped_total", Help: "Document changes doc_store dropped: its queue was full, or the server was shutting down."}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_hook_doc_store_abandoned_total", Help: "Document versions doc_store gave up on: refused with a 4xx, out of attempts, or left at the end of the shutdown drain."}),
	}
}

// register registers every collector on r (nil: none).
func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.refusals, m.failures, m.inFlight, m.pending, m.dropped, m.abandoned} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// hookMetrics are one hook's resolved children.
type hookMetrics struct {
	calls    prometheus.Counter
	duration prometheus.Observer
	refusals prometheus.Counter
	failures [numFailureKinds]prometheus.Counter
	inFlight prometheus.Gauge
}

func (m *metrics) forHook(h Hook) hookMetrics {
	name := h.String()
	hm := hookMetrics{
		calls:    m.calls.WithLabelValues(name),
		duration: m.duration.WithLabelValues(name),
		refusals: m.refusals.WithLabelValues(name),
		inFlight: m.inFlight.WithLabelValues(name),
	}
	for k := FailureKind(1); k < numFailureKinds; k++ {
		hm.failures[k] = m.failures.WithLabelValues(name, k.String())
	}
	return hm
}
