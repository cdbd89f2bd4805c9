// Package hooks is the server's side of its hooks: signed HTTP calls to the
// application's own backend, which decides what Tandem alone cannot — who
// a connection is (connect, refresh), whether a subscription or a message
// may go on and with what data (subscribe, publish), a document's content
// when Tandem has none (doc_load), whether it may be opened (doc_open),
// what a client's rpc answers (rpc) — and which keeps its own copy of each
// document (doc_store). docs/hooks.md is the backend's contract: each
// hook's request and answer, the headers, the failure policies.
//
// # Basics
//
// [New] validates a [Config] (the --config file's "hooks" object) and
// returns a [Caller] with one method per hook. Each takes a context and
// returns the hook's typed result, or a [*Refusal] (the backend's error
// code and message, which the client sees), or a [*Failure] (timeout,
// backend down, bad answer, no free slot) to which the hook's [Policy] has
// been applied. [WireError] maps both to the protocol's error code and
// message. Every request is a POST of a JSON body, signed with
// HMAC-SHA256 exactly as webhooks are (package webhook's Sign and
// headers), plus X-Tandem-Hook naming the hook.
//
// Hooks that are off cost nothing: [Caller.Enabled], Subscribe, Publish,
// DocOpen, DocChanged and StoreDoc on a hook that is off (or on a nil
// *Caller, which New returns when no hook is on) return at once without
// allocating or starting anything. Connect, Refresh, DocLoad and RPC then
// return [ErrNotConfigured].
//
// # Bounds
//
// Every call is bounded by its hook's timeout (waiting for a slot
// included) and by the concurrency bound: at most Config.MaxConcurrent
// requests are in flight to the backend across all hooks, and, where a
// hook sets its own max_concurrent, at most that many of its own. A call
// beyond the bound waits for a slot until its timeout, then fails
// (FailOverloaded) with the policy applied: a slow backend never makes the
// server open unbounded requests. Answers are bounded in size.
//
// # doc_store
//
// DocChanged and StoreDoc never block: they record a document's latest
// version under a mutex. Per document, once its changes settle (a debounce
// window, bounded by a maximum wait), one of a few workers reads its
// content (from the [DocSource] unless it was given) and sends it; one
// request per document is in flight at a time, always for the latest
// version known, and a failed one is retried with backoff. So the backend
// gets every document's latest content at least once, in increasing
// versions within an epoch, and may get a version twice (the same
// X-Tandem-Delivery then). The queue is bounded in documents; Close
// drains it within a bound.
//
// # Goroutines and locks
//
// Only doc_store runs goroutines (a timer loop and its workers, started
// by New when the hook is on and ended by Close). Its mutex guards its
// per-document state and is never held during I/O. The Caller is
// otherwise read-only after New; every method is safe for concurrent use.
//
// # Wiring
//
// The server (server/hooks.go) makes the Caller from its config; the web
// edge (web/hooks.go) calls every hook but doc_store, after its own
// authorization; the document sessions feed doc_store through
// session.DocWatcher, a one-method interface the Caller implements, so
// that session does not import this package. docs/hooks.md, "How the
// server wires them", says where each hook is asked.
package hooks
