package bench

import (
	"context"
	"time"
)

// All runs a short version of every scenario, in under three minutes,
// handing each result (or error) to report as it comes.
func All(ctx context.Context, opts Options, report func(*Result, error) error) error {
	steps := []func() (*Result, error){
		func() (*Result, error) { return Trace(ctx, TraceConfig{Rounds: 3, Baseline: true}) },
		func() (*Result, error) {
			return Editors(ctx, opts, EditorsConfig{Docs: 1, Clients: 1, Duration: 5 * time.Second})
		},
		func() (*Result, error) {
			return Editors(ctx, opts, EditorsConfig{Docs: 1, Clients: 10, Duration: 5 * time.Second})
		},
		func() (*Result, error) {
			return Editors(ctx, opts, EditorsConfig{Docs: 1, Clients: 100, Duration: 5 * time.Second})
		},
		func() (*Result, error) {
			return Editors(ctx, opts, EditorsConfig{Docs: 1, Clients: 100, Rate: 10, Duration: 5 * time.Second})
		},
		func() (*Result, error) {
			return Editors(ctx, opts, EditorsConfig{Docs: 200, Clients: 5, Duration: 5 * time.Second})
		},
		func() (*Result, error) {
			return Fanout(ctx, opts, FanoutConfig{Subscribers: 1000, Rate: 20, Duration: 5 * time.Second, PayloadBytes: 100})
		},
		func() (*Result, error) {
			return Fanout(ctx, opts, FanoutConfig{Subscribers: 1000, Rate: 400, Duration: 5 * time.Second, PayloadBytes: 100})
		},
		func() (*Result, error) { return Idle(ctx, opts, IdleConfig{Conns: 2000}) },
		func() (*Result, error) { return Presence(ctx, opts, PresenceConfig{Conns: 2000}) },
	}
	for _, step := range steps {
		if err := report(step()); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}
