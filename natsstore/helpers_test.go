package natsstore

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/internal/natstest"
)

// testConfig is a Config for tests: fast heartbeats, short timeouts, a
// test logger.
func testConfig(t *testing.T, url, name string) Config {
	return Config{
		URL:               url,
		Name:              name,
		RequestTimeout:    5 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		NodeTimeout:       400 * time.Millisecond,
		SnapshotEvery:     10,
		Logger:            zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	}
}

// open opens a Store closed at the end of the test.
func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open store on %s: %v", cfg.URL, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openOne starts one server and opens a store on it.
func openOne(t *testing.T) (*Store, *server.Server) {
	t.Helper()
	srv := natstest.Run(t)
	return open(t, testConfig(t, srv.ClientURL(), "n1")), srv
}

// rawConn connects to url without a store (for abrupt closes).
func rawConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
