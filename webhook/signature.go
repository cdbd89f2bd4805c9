package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The headers of a delivery. docs/webhooks.md describes them for receivers.
const (
	// HeaderSignature is "sha256=" and the lowercase hex HMAC-SHA256, keyed
	// with the endpoint's secret, of the timestamp header's value, a ".",
	// and the raw body: Sign's result.
	HeaderSignature = "X-Tandem-Signature"
	// HeaderTimestamp is when the attempt was sent, in Unix seconds. It is
	// signed, so a receiver that refuses old timestamps refuses replays.
	HeaderTimestamp = "X-Tandem-Timestamp"
	// HeaderEvent is the event type, as in the body's "type".
	HeaderEvent = "X-Tandem-Event"
	// HeaderDelivery is the delivery's id, as in the body's "id": the same
	// on every attempt, so a receiver can ignore a delivery it already has.
	HeaderDelivery = "X-Tandem-Delivery"
	// HeaderAttempt counts attempts from 1 (informational, not signed).
	HeaderAttempt = "X-Tandem-Attempt"
)

// MinSecretLen is the shortest signing secret the server accepts, for its
// webhooks and its hooks alike.
const MinSecretLen = 16

// Errors of Verify.
var (
	// ErrBadSignature: the signature header is missing, malformed or does
	// not match the timestamp and body.
	ErrBadSignature = errors.New("webhook: bad signature")
	// ErrStale: the timestamp is missing, malformed, or further from now
	// than the tolerance (a replay, or a clock far off).
	ErrStale = errors.New("webhook: timestamp outside tolerance")
)

// Sign returns the X-Tandem-Signature value for a body sent with
// timestamp ts (the X-Tandem-Timestamp value): "sha256=" followed by the hex
// HMAC-SHA256 of ts + "." + body under secret.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery as a Go receiver would: the signature header
// sig against the timestamp header ts and the raw body, in constant time,
// and that ts lies within tolerance of now. It returns ErrBadSignature or
// ErrStale.
func Verify(secret []byte, sig, ts string, body []byte, now time.Time, tolerance time.Duration) error {
	want := Sign(secret, ts, body)
	if !strings.HasPrefix(sig, "sha256=") || !hmac.Equal([]byte(sig), []byte(want)) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrStale
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
