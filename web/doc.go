// Package web is Tandem's HTTP and WebSocket edge: `/ws` speaks the wire
// protocol (docs/PROTOCOL.md) with each client, `/api` is the HTTP API for
// backends and admins (docs/openapi.yaml), `/healthz` reports readiness,
// `/metrics` serves Prometheus figures, and `/` the embedded demo and
// JavaScript client (web/static).
//
// # Connections
//
// Each WebSocket connection has one read goroutine, which decodes, checks
// and rate-limits every frame and owns the connection's subscriptions and
// open documents. A write goroutine exists only while there is something to
// write: it drains the bounded send queue as one frame (objects separated
// by newlines), sends the pings one server-wide pinger asks for, performs
// the close, and ends; an idle connection holds none.
//
// Anything that delivers to a connection (the hub's fan-out) only appends to
// its queue and never blocks; a connection whose queue overflows is closed
// with 4010 as a slow reader without slowing anyone else.
//
// # Authorization
//
// One function, authorize (authz.go), decides every request about a
// channel or a document, whichever transport it came by: grants, private,
// reserved and server-only namespaces, client publish, publish rates and
// presence modes, for WebSocket frames and HTTP routes alike.
//
// # Hooks
//
// Where the application's hooks are on (docs/hooks.md), the edge asks its
// backend after authorize has allowed a request: who a connection is
// (connect, refresh), whether a subscription, a message or an open may go
// on and with what data, a missing document's content, an rpc's answer.
// hooks.go says where each is asked; rpc.go serves the rpc frame. With no
// hook on, none of it runs.
//
// # The edge
//
// Before connect a WebSocket is served nothing but connect, and connections
// are capped in total and per client address (clientip.go). Every HTTP
// request passes the edge (edge.go): the Host and, in development mode, the
// browser's Origin must be allowed, and long responses move their write
// deadline per chunk. HTTPServer gives the HTTP server its timeouts.
//
// # Errors
//
// Every error a request meets is mapped to a wire code in one place
// (errors.go); unknown errors become `internal` with a generic message and
// the detail goes to the log. Messages speak the protocol's terms, never
// Go's (jsonerr.go).
package web
