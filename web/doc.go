// Package web is Tandem's HTTP and WebSocket edge: `/ws` speaks the wire
// protocol (docs/PROTOCOL.md) with each client, `/healthz` reports
// readiness, and later `/api`, `/metrics` and the bundled demo are served
// here too.
//
// # Connections
//
// Each WebSocket connection has one read goroutine, which decodes, checks
// and rate-limits every frame and owns the connection's subscriptions, and
// one write goroutine, which drains a bounded send queue and writes what is
// queued as one frame (objects separated by newlines), and sends pings.
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
