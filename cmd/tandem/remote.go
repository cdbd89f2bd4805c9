package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tandemhq/tandem/doc"
)

// maxRemoteExport bounds an export read from a server: it is held in
// memory to be checked whole before anything is written.
const maxRemoteExport = 1 << 30

// remote is a running server's HTTP API, as `tandem export --server` and
// `tandem import --server` use it.
type remote struct {
	base   string // scheme://host[:port][/prefix], no trailing slash
	key    string // API key or admin JWT; empty for an open development server
	client *http.Client
}

// newRemote checks the server URL.
func newRemote(server, key string, timeout time.Duration) (*remote, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want http(s)://host:port", server)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--server %q: want the server's base URL, without query or fragment", server)
	}
	return &remote{base: strings.TrimRight(u.String(), "/"), key: key, client: &http.Client{Timeout: timeout}}, nil
}

// do sends a request to path (already escaped) and returns the response
// if it is a 2xx; otherwise the server's error, decoded.
func (r *remote) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	req.Header.Set("User-Agent", "tandem-cli/"+Version)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var apiErr struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &apiErr) != nil || apiErr.Code == "" {
		return nil, fmt.Errorf("server answered %s", resp.Status)
	}
	err = &remoteError{status: resp.StatusCode, code: apiErr.Code, msg: apiErr.Message}
	if resp.StatusCode == http.StatusUnauthorized {
		err = fmt.Errorf("%w (check --key or $TANDEM_API_KEY)", err)
	}
	return nil, err
}

// remoteError is an error the server answered with.
type remoteError struct {
	status    int
	code, msg string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.status, e.code, e.msg)
}

// export writes document id's export, checked to be complete JSON in the
// export format, to w.
func (r *remote) export(ctx context.Context, id string, w io.Writer) error {
	resp, err := r.do(ctx, http.MethodGet, "/api/docs/"+url.PathEscape(id)+"/export", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteExport+1))
	if err != nil {
		return fmt.Errorf("reading the export: %w", err)
	}
	if len(b) > maxRemoteExport {
		return fmt.Errorf("the export is over %d bytes", maxRemoteExport)
	}
	// The server streams the export; one that failed midway sent a
	// truncated body with status 200 already out.
	var head struct {
		Format string `json:"format"`
	}
	if !json.Valid(b) || json.Unmarshal(b, &head) != nil || head.Format != "tandem-export" {
		return errors.New("the server sent an incomplete or malformed export (see the server's log)")
	}
	_, err = w.Write(b)
	return err
}

// importDoc posts an export and returns the imported document's metadata.
func (r *remote) importDoc(ctx context.Context, in io.Reader) (doc.Info, error) {
	resp, err := r.do(ctx, http.MethodPost, "/api/docs/import", in)
	if err != nil {
		return doc.Info{}, err
	}
	defer resp.Body.Close()
	var info doc.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return doc.Info{}, fmt.Errorf("reading the server's answer: %w", err)
	}
	return info, nil
}

// remoteFlags adds --server, --key and --timeout to a subcommand's flags.
func remoteFlags(fs *flag.FlagSet) (server, key *string, timeout *time.Duration) {
	server = fs.String("server", "", "base URL of a running server (http://host:port): use its HTTP API instead of --data")
	key = fs.String("key", os.Getenv("TANDEM_API_KEY"), "with --server: an API key or admin JWT ($TANDEM_API_KEY)")
	timeout = fs.Duration("timeout", 5*time.Minute, "with --server: how long the request may take")
	return server, key, timeout
}

// remoteExport is `tandem export --server`.
func remoteExport(ctx context.Context, rm *remote, id, out string, stdout io.Writer) error {
	if out == "" {
		if err := rm.export(ctx, id, stdout); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	}
	if err := writeFileAtomic(out, func(w io.Writer) error { return rm.export(ctx, id, w) }); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
