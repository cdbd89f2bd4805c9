package client

// SetOpenedHook makes OpenDoc call f once the snapshot is applied, just
// before it returns: a test can make events arrive, and be dispatched, in
// that window. Call it before the client's first OpenDoc.
func SetOpenedHook(c *Client, f func(*Document)) { c.openedHook = f }

// DrainCallbacks waits until every callback queued so far has run. It must
// not be called from a callback.
func DrainCallbacks(c *Client) {
	done := make(chan struct{})
	c.cb.push(func() { close(done) })
	<-done
}
