package web

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
)

// Authorization: one function decides, whichever transport a request
// came by.
//
// authorize is the only place where grants meet the namespaces' rules.
// Every WebSocket frame about a channel or a document (handlers.go,
// docs.go) and every HTTP route (api.go) asks it, with the access its
// request needs, so the two transports cannot drift apart. The rules:
//
//   - Names. A channel or document name that is not valid is bad_request;
//     the reserved namespace (doc:) is no channel: bad_request, whatever
//     the grants.
//   - Grants. An `admin` grant on a name allows every access to it; else
//     the access needs its own action's grant (subscribe, publish,
//     presence, read, write, comment).
//   - Private namespaces (user:<id>). Reading one (subscribe, history,
//     presence) is for that user and admins only, whatever else the grants
//     say. Publishing there is for admins and API keys with the publish
//     grant (the server side: notifications); never for a user, not even
//     into their own.
//   - Server-only namespaces (system:). Nobody publishes there, admins and
//     API keys included: only the server itself.
//   - Client publish. Where a namespace does not let clients publish
//     (dashboard:), a user's publish grant is not enough: only API keys and
//     admins publish there.
//   - Publish rates. A namespace's publish rate (publish_rate and
//     publish_burst) applies to every user who publishes there, over
//     either transport: per connection over WebSocket, per user over HTTP.
//     API keys (server-side, their batches bounded at 1,000 messages) and
//     admins are exempt.
//   - Presence. A subscriber sees a channel's members when it holds the
//     presence grant (or the channel is its own private one) and the
//     namespace lists them (presence "full"); a count-only namespace shows
//     a count to every subscriber and lists members to nobody, over HTTP
//     as over WebSocket; "off" shows nothing.
//   - Documents. Grants name the document's channel doc:<id>: read opens,
//     watches and reads it, write edits (and creates), comment comments,
//     admin deletes, compacts and moderates comments.
//   - Administration (backup, webhook deliveries, disconnecting a user)
//     needs the admin grant on a name of its own (system:backup,
//     system:webhooks, user:<id>).
//
// A development-mode guest and an API key without listed grants hold
// admin on everything, so everything above allows them what it allows
// admins.

// access is what a request asks of a name.
type access uint8

const (
	// accessSubscribe reads a channel: the subscribe frame, GET
	// /api/channels/{channel}/history and /presence.
	accessSubscribe access = iota
	// accessPublish publishes in a channel: the publish frame, POST
	// /api/broadcast. It draws on the publisher's rate budget.
	accessPublish
	// accessRetract retracts a message (the retract frame): the author's or
	// an admin's; who wrote it is the hub's to check.
	accessRetract
	// accessPresence sets one's own presence state (the presence frame).
	accessPresence
	// accessDocRead opens, watches and reads a document.
	accessDocRead
	// accessDocWrite edits or creates a document.
	accessDocWrite
	// accessDocComment comments on a document.
	accessDocComment
	// accessDocAdmin deletes or compacts a document.
	accessDocAdmin
	// accessDocImport imports a document whose id only its export says:
	// it needs write on every document (doc:*).
	accessDocImport
	// accessAdmin administers what a name stands for (system:backup,
	// system:webhooks, user:<id> for disconnecting a user).
	accessAdmin
)

// principal is who asks, whichever transport carried the request.
type principal struct {
	auth.Identity
	// apiKey marks a server-side API key of the HTTP API.
	apiKey bool
	// budget returns the limiter that this principal's publishing in a
	// namespace draws on: the connection's own over WebSocket, the user's
	// over HTTP. Nil: publishing is not limited.
	budget func(ns *session.Namespace) *rate.Limiter
}

// verdict is what authorize found besides the yes.
type verdict struct {
	// admin: the principal holds an admin grant on the name (it moderates
	// comments, retracts others' messages, publishes without a rate).
	admin bool
	// presence is how the channel's namespace tracks presence, and
	// seesPresence whether the principal may see and appear in it.
	presence     session.PresenceMode
	seesPresence bool
}

// authorize decides whether p may have access a to name: a channel name,
// a document id for the document accesses, or a name of its own for
// accessAdmin. It returns a bad_request, forbidden or rate_limited error,
// or what else it found; a publish it allows has drawn on p's budget.
func (s *Server) authorize(p principal, a access, name string) (verdict, error) {
	switch a {
	case accessDocRead, accessDocWrite, accessDocComment, accessDocAdmin:
		if err := session.ValidDocID(name); err != nil {
			return verdict{}, badRequest(err.Error())
		}
		ch := docChannel(name)
		v := verdict{admin: p.Grants.Allows(auth.ActionAdmin, ch)}
		return v, need(p.Identity, docAction[a], ch)
	case accessDocImport:
		return verdict{admin: p.Grants.Allows(auth.ActionAdmin, "doc:*")}, need(p.Identity, auth.ActionWrite, "doc:*")
	case accessAdmin:
		return verdict{admin: true}, need(p.Identity, auth.ActionAdmin, name)
	}

	if err := session.ValidChannel(name); err != nil {
		return verdict{}, badRequest(err.Error())
	}
	ns := s.cfg.Hub.Namespace(name)
	if ns.Reserved {
		return verdict{}, badRequest(fmt.Sprintf("%s is a document's channel: open documents with the open request or /api/docs", name))
	}
	v := verdict{admin: p.Grants.Allows(auth.ActionAdmin, name), presence: ns.Presence}
	own := ns.Private && !p.apiKey && name == ns.Name+":"+p.UserID
	switch a {
	case accessSubscribe, accessPresence, accessRetract:
		action := map[access]string{accessSubscribe: auth.ActionSubscribe, accessPresence: auth.ActionPresence, accessRetract: auth.ActionPublish}[a]
		switch {
		case ns.Private && !own && !v.admin:
			return v, forbidden(fmt.Sprintf("%s is private to its user", name))
		case !own && !p.Grants.Allows(action, name):
			return v, forbidden(fmt.Sprintf("no %s grant for %s", action, name))
		}
		v.seesPresence = ns.Presence != session.PresenceOff && (own || p.Grants.Allows(auth.ActionPresence, name))
		return v, nil
	case accessPublish:
		switch {
		case ns.ServerOnly:
			return v, forbidden(fmt.Sprintf("only the server publishes in %s", name))
		case ns.Private && !v.admin && !(p.apiKey && p.Grants.Allows(auth.ActionPublish, name)):
			return v, forbidden(fmt.Sprintf("only the server publishes in %s, private to its user", name))
		case !p.Grants.Allows(auth.ActionPublish, name):
			return v, forbidden(fmt.Sprintf("no publish grant for %s", name))
		case !ns.ClientPublish && !v.admin && !p.apiKey:
			return v, forbidden(fmt.Sprintf("only the server publishes in %s: clients may not", name))
		}
		if ns.PublishRate > 0 && !v.admin && !p.apiKey && p.budget != nil && !p.budget(ns).Allow() {
			s.cfg.Metrics.RateLimited.Inc()
			return v, &requestError{proto.CodeRateLimited, fmt.Sprintf("publishing too fast in %s: at most %g a second", name, ns.PublishRate)}
		}
		return v, nil
	}
	return v, fmt.Errorf("authorize: unknown access %d", a) // a bug: internal
}

// docAction is the grant action each document access needs.
var docAction = map[access]string{
	accessDocRead: auth.ActionRead, accessDocWrite: auth.ActionWrite,
	accessDocComment: auth.ActionComment, accessDocAdmin: auth.ActionAdmin,
}

// need checks a grant.
func need(ident auth.Identity, action, name string) error {
	if !ident.Grants.Allows(action, name) {
		return forbidden(fmt.Sprintf("no %s grant for %s", action, name))
	}
	return nil
}

// newPublishLimiter is a limiter with a namespace's publish rate.
func newPublishLimiter(ns *session.Namespace) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(ns.PublishRate), max(ns.PublishBurst, 1))
}

// userBudgets holds the publish limiters of users publishing over HTTP, by
// user and namespace. Once a minute, the limiters that have refilled to
// their burst are forgotten: a new one is the same.
type userBudgets struct {
	mu    sync.Mutex               // guards m and swept
	m     map[string]*rate.Limiter // by user and namespace
	swept time.Time
}

// budgetFor returns the budget function of user over HTTP.
func (b *userBudgets) budgetFor(user string) func(ns *session.Namespace) *rate.Limiter {
	return func(ns *session.Namespace) *rate.Limiter {
		key := user + "\x00" + ns.Name
		now := time.Now()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.m == nil {
			b.m = make(map[string]*rate.Limiter)
		}
		if now.Sub(b.swept) > time.Minute {
			for k, lim := range b.m {
				if lim.TokensAt(now) >= float64(lim.Burst()) {
					delete(b.m, k)
				}
			}
			b.swept = now
		}
		lim := b.m[key]
		if lim == nil {
			lim = newPublishLimiter(ns)
			b.m[key] = lim
		}
		return lim
	}
}

// principal is this connection's identity as authorize sees it, publishing
// on the connection's own budget. Read goroutine only.
func (c *conn) principal() principal {
	return principal{Identity: c.identity(), budget: c.publishBudget}
}

// publishBudget returns the connection's publish limiter for a namespace.
// Read goroutine only: it owns nsLimiters.
func (c *conn) publishBudget(ns *session.Namespace) *rate.Limiter {
	lim := c.nsLimiters[ns.Name]
	if lim == nil {
		if c.nsLimiters == nil {
			c.nsLimiters = make(map[string]*rate.Limiter)
		}
		lim = newPublishLimiter(ns)
		c.nsLimiters[ns.Name] = lim
	}
	return lim
}
