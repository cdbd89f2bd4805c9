// Package webhook delivers the server's events (session.Event: a document
// changed, a comment was added, someone was mentioned, joined or left a
// document or channel, a client disconnected) to configured HTTP endpoints
// as JSON POSTs signed with HMAC-SHA256. docs/webhooks.md is the receiver's
// contract: the headers, exactly what is signed, the body, retries.
//
// # Basics
//
// [New] validates the endpoints and starts the goroutines; the
// [Dispatcher] is a session.Notifier, so the hub, live documents and the
// web edge all call its Notify; [Dispatcher.Close] drains what is queued
// within a deadline. [Dispatcher.Deliveries] is the delivery log that
// GET /api/webhooks/deliveries serves.
//
// # Never slowing a session
//
// Notify runs on hot paths (a document's goroutine, the hub under a channel
// lock), so it does no I/O and never waits: it encodes the event and makes
// a non-blocking send into each interested endpoint's bounded queue. When a
// queue is full the delivery is dropped, counted in
// tandem_webhook_deliveries_total{outcome="dropped"} and written to the
// delivery log. Each endpoint has its own queue and workers, so a slow or
// dead receiver only delays (and eventually drops) its own deliveries.
//
// doc.changed is debounced per document: the first change of a document
// opens a window of Config.Debounce, later changes within it only replace
// the pending event, and when the window ends one event with the latest
// version goes out. A document typed into without pause thus yields one
// event per window, never a flood.
//
// # Goroutines and locks
//
// One goroutine ends debounce windows; each endpoint has Config.Workers
// goroutines posting its deliveries, each with a timeout and retries with
// exponential backoff. Close stops them all and waits for them. Every
// method is safe for concurrent use. Lock order: Dispatcher.mu before
// deliveryLog.mu; neither is held during I/O.
//
// # Caveats
//
// Deliveries to one endpoint may arrive out of order (several workers,
// retries): receivers order by the body's `ts` and, for doc.changed, by
// `version`. A delivery is at least once: a receiver that answered too late
// may see the same X-Tandem-Delivery again.
package notify
