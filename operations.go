package pubsub

// OnProgress makes Replay and Discard call fn after each letter they resolve, with how
// many are done and how many were selected, on the calling goroutine: the CLI draws
// its progress bar with it.
func (s ReplaySelector) OnProgress(fn func(done, total int)) ReplaySelector {
	s.progress = fn
	return s
}

// HistoryEnabled reports whether the client keeps events for History
// (WithEventHistory). It is safe for concurrent use.
func (c *Client) HistoryEnabled() bool { return c.obs.history != nil }

// URL returns the URL the client was opened with, its password and the values of
// query parameters that look like secrets replaced by "xxxxx" (transport.RedactURL),
// for operators to see where it points; "" for a client made
// with New. It is safe for concurrent use.
func (c *Client) URL() string { return c.url }
