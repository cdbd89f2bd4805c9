package server

import (
	"context"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/notify"
)

// WebhookConfig is a webhook endpoint in the config file.
type WebhookConfig struct {
	// URL receives the POSTs: http or https.
	URL string `json:"url"`
	// Secret keys the HMAC-SHA256 signature; at least 16 bytes.
	Secret string `json:"secret"`
	// Events to send; empty or ["*"]: every event.
	Events []string `json:"events,omitempty"`
}

// WebhookOptionsConfig tunes webhook delivery; a zero field keeps the
// default notify.Config gives.
type WebhookOptionsConfig struct {
	Debounce    Duration `json:"debounce,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
	MaxAttempts int      `json:"max_attempts,omitempty"`
	RetryMin    Duration `json:"retry_min,omitempty"`
	RetryMax    Duration `json:"retry_max,omitempty"`
	QueueLen    int      `json:"queue_len,omitempty"`
	Workers     int      `json:"workers,omitempty"`
	LogSize     int      `json:"log_size,omitempty"`
	// DrainTimeout bounds how long shutdown waits for queued deliveries. By
	// default 5 * time.Second, and never past the shutdown's own deadline.
	DrainTimeout Duration `json:"drain_timeout,omitempty"`
}

// webhookEndpoints converts the file's webhooks.
func (c *Config) webhookEndpoints() []notify.Endpoint {
	var out []notify.Endpoint
	for _, h := range c.File.Webhooks {
		out = append(out, notify.Endpoint{URL: h.URL, Secret: h.Secret, Events: h.Events})
	}
	return out
}

// validateWebhooks checks the file's webhooks (URLs, secrets, events).
func (c *Config) validateWebhooks() error {
	for i, e := range c.webhookEndpoints() {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("config: webhooks[%d]: %w", i, err)
		}
	}
	return nil
}

// startWebhooks starts the dispatcher. It always returns one (with no
// endpoints it runs nothing), so the web edge can serve an empty log.
func (m *Server) startWebhooks() (*notify.Dispatcher, error) {
	o := m.Config.File.WebhookOptions
	d, err := notify.New(notify.Config{
		Endpoints: m.Config.webhookEndpoints(),
		Debounce:  time.Duration(o.Debounce), Timeout: time.Duration(o.Timeout), MaxAttempts: o.MaxAttempts,
		RetryMin: time.Duration(o.RetryMin), RetryMax: time.Duration(o.RetryMax), QueueLen: o.QueueLen,
		Workers: o.Workers, LogSize: o.LogSize, Metrics: m.Metrics, Logger: m.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return d, nil
}

// stopWebhooks drains the dispatcher within the drain timeout and ctx.
func (m *Server) stopWebhooks(ctx context.Context) {
	if m.Webhooks == nil {
		return
	}
	drain := time.Duration(m.Config.File.WebhookOptions.DrainTimeout)
	if drain <= 0 {
		drain = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	if err := m.Webhooks.Close(ctx); err != nil {
		m.Log.Warn().Err(err).Msg("webhook deliveries abandoned at shutdown")
	}
}
