package main

import (
	"context"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/server"
)

// runClusterNode runs a cluster node on an embedded NATS server with
// JetStream in a temporary directory, with remoteTestKey, and returns its
// base URL and the server.
func runClusterNode(t *testing.T) (string, *server.Server) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(ns.Shutdown)
	cfg := server.DefaultConfig()
	cfg.Addr, cfg.Data, cfg.APIKeys = "127.0.0.1:0", "", []string{remoteTestKey}
	cfg.NATSURL, cfg.Node = ns.ClientURL(), "migrate-test"
	srv := server.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return "http://" + srv.Addr(), srv
}

// TestMigrateIntoCluster: every document of a single node's data file
// moves into a cluster node with its whole history; run again, nothing
// moves twice.
func TestMigrateIntoCluster(t *testing.T) {
	src, content := makeStore(t)
	url, node := runClusterNode(t)
	out, errOut, err := runCmd("migrate", "--data", src, "--server", url, "--key", remoteTestKey)
	if err != nil || !strings.Contains(out, `moved "notes" at version 50`) || !strings.Contains(out, "1 documents moved, 0 already there") {
		t.Fatalf("migrate: %v, stdout %q, stderr %q", err, out, errOut)
	}
	got, err := node.NATS.ContentAt("notes", 50)
	cs, _ := node.NATS.Comments("notes")
	ops, _ := node.NATS.Ops("notes", 0, 50)
	if err != nil || got != content || len(cs) != 1 || cs[0].Text != "hi" || len(ops) != 50 || ops[49].UID != "u49" {
		t.Fatalf("in the cluster: content %q (%v), comments %+v, %d ops; want %q", got, err, cs, len(ops), content)
	}
	out, _, err = runCmd("migrate", "--data", src, "--server", url, "--key", remoteTestKey)
	if err != nil || !strings.Contains(out, "0 documents moved, 1 already there") {
		t.Fatalf("migrate again: %v, %q", err, out)
	}
	// Bad use.
	if _, _, err := runCmd("migrate", "--server", url); err == nil {
		t.Fatal("migrate without --data succeeded")
	}
}

// TestServeClusterFlags: --nats and $TANDEM_NATS_URL name the NATS
// servers, --node the node; --data with them is refused.
func TestServeClusterFlags(t *testing.T) {
	var f serveFlags
	f.Config = server.DefaultConfig()
	if err := f.ParseFlags([]string{"--nats", "nats://a:4222,nats://b:4222", "--node", "n1"}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if !f.Config.Cluster() || f.Config.NATSURL != "nats://a:4222,nats://b:4222" || f.Config.Node != "n1" {
		t.Fatalf("config: %+v", f.Config)
	}
	t.Setenv("TANDEM_NATS_URL", "nats://c:4222")
	f = serveFlags{Config: server.DefaultConfig()}
	if err := f.ParseFlags(nil, &strings.Builder{}); err != nil || f.Config.NATSURL != "nats://c:4222" {
		t.Fatalf("from the environment: %v, %q", err, f.Config.NATSURL)
	}
	f = serveFlags{Config: server.DefaultConfig()}
	err := f.ParseFlags([]string{"--data", "/tmp/x"}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "keeps no data of its own") {
		t.Fatalf("--data with a NATS URL: %v", err)
	}
}
