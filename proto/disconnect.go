package proto

import "strconv"

// Disconnect is a reason the server closes a connection: the WebSocket
// close code and reason it sends, and whether a client should reconnect.
// Each reason is declared once below and used by value, so a close code
// and its text never drift apart at a call site. A Disconnect is an error,
// so code that decides to close can return one.
type Disconnect struct {
	// Code is the WebSocket close code (one of the Close constants).
	Code int
	// Reason is the close frame's reason text.
	Reason string
	// Reconnect says whether a client that did nothing wrong should
	// reconnect (after its backoff): true for a server going away, a slow
	// reader or a full server; false where reconnecting as it was would be
	// refused again (a bad token, an administrator's disconnect).
	Reconnect bool
}

func (d Disconnect) Error() string {
	return "disconnect " + strconv.Itoa(d.Code) + ": " + d.Reason
}

// Because returns d with another reason text (one that names a figure,
// such as the connect timeout).
func (d Disconnect) Because(reason string) Disconnect {
	d.Reason = reason
	return d
}

// The reasons the server closes a connection for.
var (
	// DisconnectShutdown: the server is shutting down.
	DisconnectShutdown = Disconnect{CloseGoingAway, "server going away", true}
	// DisconnectInvalidUTF8: a text frame that is not UTF-8.
	DisconnectInvalidUTF8 = Disconnect{CloseInvalidUTF8, "invalid UTF-8", false}
	// DisconnectNoConnect: the first frame was not a connect frame.
	DisconnectNoConnect = Disconnect{CloseUnauthorized, "the first frame must be connect", false}
	// DisconnectConnectTimeout: no connect frame within the connect
	// timeout (Because names it).
	DisconnectConnectTimeout = Disconnect{CloseUnauthorized, "no connect in time", true}
	// DisconnectUnauthorized: connect or refresh with a token that does
	// not verify (the error frame before it says why).
	DisconnectUnauthorized = Disconnect{CloseUnauthorized, "unauthorized", false}
	// DisconnectRefused: the application's connect or refresh hook said
	// no (the error frame before it gives its reason).
	DisconnectRefused = Disconnect{CloseUnauthorized, "refused by the application", false}
	// DisconnectAppUnavailable: the application's connect hook could not
	// be asked (its backend failed); a client retries after its backoff.
	DisconnectAppUnavailable = Disconnect{CloseTryAgainLater, "the application is unavailable; try again later", true}
	// DisconnectTokenExpired: the token expired without a refresh; a
	// client reconnects with a new one.
	DisconnectTokenExpired = Disconnect{CloseUnauthorized, "token expired", true}
	// DisconnectByAdmin: an administrator disconnected the user (POST
	// /api/users/{id}/disconnect), revoking the tokens it used.
	DisconnectByAdmin = Disconnect{CloseUnauthorized, "disconnected by an administrator", false}
	// DisconnectRateLimit: too many frames over the rate limit within the
	// violation window.
	DisconnectRateLimit = Disconnect{CloseRateLimit, "rate limit exceeded repeatedly", true}
	// DisconnectTooLarge: a frame over the frame size limit.
	DisconnectTooLarge = Disconnect{CloseTooLarge, "frame too large", true}
	// DisconnectSlowReader: the connection's send queue overflowed.
	DisconnectSlowReader = Disconnect{CloseSlowReader, "slow reader: send queue overflowed", true}
	// DisconnectServerFull: the server is at its connection limit.
	DisconnectServerFull = Disconnect{CloseTryAgainLater, "server at its connection limit; try again later", true}
	// DisconnectAddressFull: too many connections from the client's
	// address.
	DisconnectAddressFull = Disconnect{CloseTryAgainLater, "too many connections from your address; try again later", true}
)
