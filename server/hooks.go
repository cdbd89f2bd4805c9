package server

import (
	"context"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/web"
)

// The application's hooks (docs/hooks.md): the config file's "hooks"
// object and each namespace's "hooks" list, checked at start and wired into
// the edge (every hook but doc_store) and the document sessions (doc_store,
// through session.DocsConfig.Watcher).

// defaultConnectTimeout is the edge's connect timeout when the config sets
// none (web.Config's default).
const defaultConnectTimeout = 10 * time.Second

// validateHooks checks the hooks object and the namespaces' hooks lists
// against it.
func (c *Config) validateHooks() error {
	h := c.File.Hooks
	if err := h.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for name, ns := range c.File.Namespaces {
		if err := h.CheckNamespace(name, ns.Hooks); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if h.Enabled(hooks.HookConnect) {
		connect := time.Duration(c.File.Limits.ConnectTimeout)
		if connect <= 0 {
			connect = defaultConnectTimeout
		}
		timeout := time.Duration(h.Timeout)
		if h.Connect.Timeout > 0 {
			timeout = time.Duration(h.Connect.Timeout)
		} else if timeout <= 0 {
			timeout = hooks.DefaultTimeout
		}
		if timeout >= connect {
			return fmt.Errorf("config: hooks.connect: its timeout (%v) must be below limits.connect_timeout (%v), or clients are dropped before the answer", timeout, connect)
		}
	}
	return nil
}

// startHooks makes the hooks' Caller (nil when no hook is on), its metrics
// registered with the server's, reading the documents it stores from the
// store (the data file, or JetStream in cluster mode).
func (m *Server) startHooks() (*hooks.Caller, error) {
	h := m.Config.File.Hooks
	if h == nil {
		return nil, nil
	}
	caller, err := hooks.New(*h, hooks.Options{Registerer: m.Metrics.Registry, Logger: m.Log})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	caller.SetDocSource(m.durableDoc)
	return caller, nil
}

// durableDoc is doc_store's source: a document's head as the database
// holds it, which is what acknowledged ops made it (never an op not yet
// durable). It reads storage rather than the document's session, so that
// it serves the final drain at shutdown, after the sessions closed.
func (m *Server) durableDoc(_ context.Context, id string) (hooks.DocSnapshot, error) {
	info, err := m.docStore.GetDoc(id)
	if err != nil {
		return hooks.DocSnapshot{}, err
	}
	content, err := m.docStore.ContentAt(id, info.Version)
	if err != nil {
		return hooks.DocSnapshot{}, err
	}
	epoch := info.Epoch
	if epoch == "" {
		epoch = "none" // as the sessions name an incarnation without one
	}
	return hooks.DocSnapshot{Doc: id, Version: info.Version, Epoch: epoch, Content: content}, nil
}

// webHooks is what the edge is told of the hooks.
func (m *Server) webHooks() web.Hooks {
	if m.Hooks == nil {
		return web.Hooks{}
	}
	out := web.Hooks{Caller: m.Hooks, Namespaces: map[string]hooks.NamespaceHooks{}}
	for name, ns := range m.Config.File.Namespaces {
		if ns.Hooks != (hooks.NamespaceHooks{}) {
			out.Namespaces[name] = ns.Hooks
		}
	}
	return out
}

// docWatcher is the sessions' DocWatcher: the Caller when doc_store is
// on, else none (no call at all per op).
func (m *Server) docWatcher() session.DocWatcher {
	if !m.Hooks.Enabled(hooks.HookDocStore) {
		return nil
	}
	return m.Hooks
}

// stopHooks drains doc_store (within its drain_timeout and ctx) once the
// sessions stopped, before the database closes. What it could not send is
// counted in tandem_hook_doc_store_abandoned_total and logged.
func (m *Server) stopHooks(ctx context.Context) {
	if m.Hooks == nil {
		return
	}
	if err := m.Hooks.Close(ctx); err != nil {
		m.Log.Warn().Err(err).Msg("doc_store: documents left unsent at shutdown")
	}
}
