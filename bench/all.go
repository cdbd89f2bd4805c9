package bench

import (
	"context"
	"time"
)

// All runs a short version of every scenario, in under three minutes,
// handing each result (or error) to report as it comes. History, which
// needs a server of its own, replays the first 20,000 edits of its trace,
// and only when no running server was given.
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
	if opts.Server == "" { // history measures a data file of its own
		steps = append(steps[:1], append([]func() (*Result, error){
			func() (*Result, error) { return History(ctx, opts, HistoryConfig{Edits: 20000}) },
		}, steps[1:]...)...)
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
