package server

import "time"

// SetStatsInterval makes the server publish its stats every d (before Run).
func SetStatsInterval(s *Server, d time.Duration) { s.statsInterval = d }
