// Package webhook is what a receiver of Tandem's webhooks (and of its
// server hooks) needs to trust a request: the headers a delivery carries,
// [Sign], which computes its signature, and [Verify], which checks one in
// constant time and refuses stale timestamps. It imports only the standard
// library, so a backend can use it without pulling in the server.
// docs/webhooks.md is the receiver's contract.
package webhook
