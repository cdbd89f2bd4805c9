package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/internal/server"
	"github.com/tandemhq/tandem/storage"
)

// TestBackupStalledReaderBlocksNoWrite: a backup client that reads the
// response's headers and then nothing holds no read transaction: 10,000
// ops of 4,000 characters (about 80 MB of log and journal, so the file
// must grow and bbolt remap it: the step a long read transaction blocks)
// are appended and acknowledged within 60 s while it stalls. The HTTP write
// timeout is set far above that bound, so it is the copy to a temporary
// file, not the timeout, that lets the writes through. Then the client reads
// the rest, and the copy opens as a store holding the documents written
// before it.
func TestBackupStalledReaderBlocksNoWrite(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes about 100 MB")
	}
	const (
		fillDocs  = 24
		fillChars = 900_000 // a create's body stays under the API's 1 MiB
		editDocs  = 100     // each on a connection of its own: commits group their ops
		opsEach   = 100     // 10,000 ops in all
		opChars   = 200
		bound     = 150 * time.Second // generous: without the fix the appends wait for the stalled client forever
	)
	ts := startServer(t, withNoSync(), withLimits(func(l *server.LimitsConfig) {
		l.OpRate, l.OpBurst = 1e6, 1e6
		l.HTTPWriteTimeout = server.Duration(10 * time.Minute)
	}))
	base := "http://" + ts.Addr

	// About 40 MB of data first: far more than the sockets between the
	// server and a client that does not read can buffer (a few MB each way
	// on loopback).
	for i := range fillDocs {
		body, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("fill-%d", i), "content": strings.Repeat(string(rune('a'+i)), fillChars)})
		resp, err := http.Post(base+"/api/docs", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create fill-%d: %d", i, resp.StatusCode)
		}
	}

	// The backup client: it reads the status line and headers, then stops.
	conn, err := net.Dial("tcp", ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/backup HTTP/1.1\r\nHost: %s\r\n\r\n", ts.Addr)
	br := bufio.NewReaderSize(conn, 4<<10)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("backup: %d", resp.StatusCode)
	}
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil || size < fillDocs*fillChars {
		t.Fatalf("backup: Content-Length %q for %d bytes of documents", resp.Header.Get("Content-Length"), fillDocs*fillChars)
	}
	_ = conn.SetReadDeadline(time.Time{})

	// The appends, while the backup client reads nothing.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, editDocs)
	for d := range editDocs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := appendOps(ctx, ts.URL, fmt.Sprintf("edit-%d", d), opsEach, opChars); err != nil {
				errs <- fmt.Errorf("edit-%d: %w", d, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("appends while a backup client stalls (bound %v): %v", bound, err)
	}
	t.Logf("%d ops of %d characters acknowledged in %v while the backup client read nothing", editDocs*opsEach, opChars, time.Since(start).Round(time.Millisecond))

	// The stalled client takes the rest: a whole, consistent copy.
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != size {
		t.Fatalf("backup body: %d of %d bytes: %v", n, size, err)
	}
	db, err := storage.Open(path, storage.Config{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer db.Close()
	for i := range fillDocs {
		if _, err := db.GetDoc(fmt.Sprintf("fill-%d", i)); err != nil {
			t.Fatalf("fill-%d in the backup: %v", i, err)
		}
	}
}

// appendOps opens doc on a connection of its own and applies n ops, one
// at a time (the protocol allows one in flight), each replacing the
// document's text with chars new characters; it returns the first failure.
func appendOps(ctx context.Context, url, doc string, n, chars int) error {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	defer stop()
	// request sends v and reads frames until one of type want, failing on
	// an error frame.
	request := func(v map[string]any, want string) error {
		if err := ws.WriteJSON(v); err != nil {
			return err
		}
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			for line := range strings.SplitSeq(string(data), "\n") {
				var f struct{ Type, Code, Message string }
				if err := json.Unmarshal([]byte(line), &f); err != nil {
					return err
				}
				switch f.Type {
				case want:
					return nil
				case "error":
					return fmt.Errorf("%s: %s", f.Code, f.Message)
				}
			}
		}
	}
	if err := request(map[string]any{"type": "connect", "token": "", "user": "w-" + doc}, "connected"); err != nil {
		return err
	}
	if err := request(map[string]any{"type": "open", "doc": doc}, "snapshot"); err != nil {
		return err
	}
	for v := range n {
		op := []any{strings.Repeat(string(rune('A'+v%26)), chars)}
		if v > 0 {
			op = []any{-chars, op[0]}
		}
		if err := request(map[string]any{"type": "op", "doc": doc, "version": v, "op": op, "uid": fmt.Sprintf("%s-%d", doc, v)}, "ack"); err != nil {
			return fmt.Errorf("op %d: %w", v, err)
		}
	}
	return nil
}
