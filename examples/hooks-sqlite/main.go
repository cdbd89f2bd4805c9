// Command hooks-sqlite runs the example chat backend of docs/hooks.md: the
// application's own server, which Tandem calls through its hooks (publish,
// doc_load, doc_store, rpc) and which keeps messages and documents in
// SQLite.
//
//	TANDEM_HOOKS_SECRET=a-long-random-secret go run ./examples/hooks-sqlite -db chat.db
//
// It prints the "hooks" object to put in Tandem's --config file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/examples/hooks-sqlite/chatapp"
	"github.com/tandemhq/tandem/webhook"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	dbPath := flag.String("db", "chat.db", "SQLite database file (created if missing)")
	banned := flag.String("banned", "spam,scam", "comma-separated words a message may not contain")
	flag.Parse()
	secret := os.Getenv("TANDEM_HOOKS_SECRET")
	if len(secret) < webhook.MinSecretLen {
		return fmt.Errorf("set TANDEM_HOOKS_SECRET to the hooks' secret of Tandem's config (at least %d bytes)", webhook.MinSecretLen)
	}
	db, err := chatapp.OpenDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()

	srv := &http.Server{Addr: *addr, Handler: chatapp.New(db, secret, strings.Split(*banned, ",")),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	fmt.Printf(`chat backend on http://%s, data in %s. In Tandem's --config file:

  "hooks": {
    "url": "http://%s", "secret": "<TANDEM_HOOKS_SECRET>",
    "publish": {}, "doc_load": {}, "doc_store": {}, "rpc": {"routes": [{"prefix": "chat."}]}
  },
  "namespaces": {"chat": {"history_size": 1000, "presence": "full", "client_publish": true, "hooks": ["publish"]}}

`, *addr, *dbPath, *addr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
