package web

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the address a request comes from: its TCP peer, or,
// when the peer is one of the config's TrustedProxies, the client the
// proxies forward for. That is the rightmost address of X-Forwarded-For
// that is not itself a trusted proxy (each proxy appends the address it
// heard from, so everything left of the last untrusted hop is the
// client's to invent), or else X-Real-IP. The headers of a peer that is
// not a trusted proxy are ignored: anyone can send them.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer, err := parseHop(r.RemoteAddr)
	if err != nil || !s.trustedProxy(peer) {
		return peer // invalid only for a listener that is not TCP
	}
	if hops := r.Header.Values("X-Forwarded-For"); len(hops) > 0 {
		all := strings.Split(strings.Join(hops, ","), ",")
		client := peer
		for i := len(all) - 1; i >= 0; i-- {
			a, err := parseHop(all[i])
			if err != nil {
				break // garbage left of the trusted hops: the client's own
			}
			client = a
			if !s.trustedProxy(a) {
				break
			}
		}
		return client
	}
	if a, err := parseHop(r.Header.Get("X-Real-IP")); err == nil {
		return a
	}
	return peer
}

// trustedProxy reports whether a is one of the config's TrustedProxies.
func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses an address as proxies write it: "203.0.113.7",
// "2001:db8::1", "[2001:db8::1]", or any of them with a port.
func parseHop(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return a.Unmap(), err
}

// capKey is what the per-address connection cap counts by: an IPv4
// address, or an IPv6 address's /64 (the block one subscriber usually
// holds, so one host cannot take a fresh address per connection).
func capKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
