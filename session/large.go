package session

import (
	"bytes"
	"io"
)

// Large frames. A snapshot of a long document (or an opened reply with many
// ops) is one JSON object of up to tens of megabytes once escaped. Encoded
// into one []byte it would cost that much memory per opening connection
// and overflow the connection's send-queue bound (a slow-reader close for
// a document that is inside every limit). Instead the session hands such a
// reply to the connection as a LargeFrame, which the connection's writer
// streams into its own WebSocket message, in pieces, as the socket drains;
// the frames queued after it keep their order. A broadcast too large for
// the send queue's byte bound (the pieces of a large HTTP edit) goes the
// same way, already encoded (the same bytes for everyone).

// eagerMax is the largest reply (by LargeFrame.Size) encoded at once and
// queued as an ordinary frame; escaped it is at most six times larger,
// well within the send queue's bound. Larger replies and broadcasts go to
// a LargeSender.
const eagerMax = 64 << 10

// LargeFrame is a server frame written to a connection in pieces.
type LargeFrame interface {
	// Size is the memory the frame holds, in bytes: what the connection's
	// budget of pending large frames counts.
	Size() int
	// WriteTo writes the frame's JSON (one object) to w. It may be called
	// on another goroutine; the frame must not change meanwhile.
	WriteTo(w io.Writer) (int64, error)
}

// LargeSender is the optional ability of a Subscriber to queue a
// LargeFrame; the session finds it with a type assertion. A Subscriber
// without it gets large frames encoded into one Send.
type LargeSender interface {
	// SendLarge queues f behind the frames queued before it, without
	// blocking. The connection bounds the bytes of the large frames it has
	// pending (it always takes one). Over that bound a reply (reply true)
	// is refused with an error wrapping ErrBusy and the connection stays
	// up; a broadcast closes the connection as a slow reader and gets
	// ErrSlow. A closing connection answers ErrSlow.
	SendLarge(f LargeFrame, reply bool) error
}

// encodedFrame is an already encoded frame sent as a LargeFrame.
type encodedFrame []byte

func (f encodedFrame) Size() int { return len(f) }

func (f encodedFrame) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(f)
	return int64(n), err
}

// sendFrame sends a reply or broadcast frame f to sub: encoded at once when
// it is small, else as a LargeFrame when sub can take one, else encoded
// whole. It returns the LargeSender's refusal (ErrBusy, ErrSlow), or
// ErrSlow when sub's Send reports a closing connection.
func sendFrame(sub Subscriber, f LargeFrame, reply bool) error {
	if f.Size() > eagerMax {
		if ls, ok := sub.(LargeSender); ok {
			return ls.SendLarge(f, reply)
		}
	}
	var buf bytes.Buffer
	buf.Grow(f.Size())
	_, _ = f.WriteTo(&buf) // a bytes.Buffer takes everything
	if !sub.Send(buf.Bytes()) {
		return ErrSlow
	}
	return nil
}

// sendEncoded sends an encoded broadcast frame to sub: as a LargeFrame when
// it is larger than eagerMax and sub can take one (the send queue's byte
// bound is for many small frames), else with Send.
func sendEncoded(sub Subscriber, frame []byte) bool {
	if len(frame) > eagerMax {
		if ls, ok := sub.(LargeSender); ok {
			return ls.SendLarge(encodedFrame(frame), false) == nil
		}
	}
	return sub.Send(frame)
}

// sendFrames sends encoded frames to sub in order: runs of small frames
// in one call where sub is a BatchSender, each large one as sendEncoded
// does. It stops at the first the subscriber refuses.
func sendFrames(sub Subscriber, frames [][]byte) bool {
	bs, ok := sub.(BatchSender)
	if !ok {
		for _, f := range frames {
			if !sendEncoded(sub, f) {
				return false
			}
		}
		return true
	}
	_, large := sub.(LargeSender)
	start := 0
	for i, f := range frames {
		if len(f) <= eagerMax || !large {
			continue
		}
		if i > start && !bs.SendBatch(frames[start:i]) {
			return false
		}
		if !sendEncoded(sub, f) {
			return false
		}
		start = i + 1
	}
	return start == len(frames) || bs.SendBatch(frames[start:])
}
