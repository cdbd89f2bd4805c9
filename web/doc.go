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
// # Errors
//
// Every error a request meets is mapped to a wire code in one place
// (errors.go); unknown errors become `internal` with a generic message and
// the detail goes to the log.
package web
