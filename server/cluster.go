package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/natsstore"
	"github.com/tandemhq/tandem/session"
)

// NATSConfig is the config file's "nats" object: how a node reaches the
// NATS servers of a cluster (docs/cluster.md). With a URL (here, or
// --nats, or $TANDEM_NATS_URL, which win) the server runs in cluster
// mode: its state is in JetStream and --data is not used.
type NATSConfig struct {
	// URL is one NATS server URL or several, comma-separated.
	URL string `json:"url,omitempty"`
	// Creds is a NATS credentials file (user JWT and NKey seed).
	Creds string `json:"creds,omitempty"`
	// TLSCert and TLSKey are a client certificate and its key; TLSCA the
	// CA that signed the servers' certificates (PEM files).
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`
	TLSCA   string `json:"tls_ca,omitempty"`
	// Replicas of every stream and bucket Tandem creates: 1 for one NATS
	// server, 3 for a three-server cluster. Default 1.
	Replicas int `json:"replicas,omitempty"`
	// Prefix of every stream, bucket and subject; default "tandem".
	Prefix string `json:"prefix,omitempty"`
	// RequestTimeout bounds each JetStream request; default 10s.
	RequestTimeout Duration `json:"request_timeout,omitempty"`
	// HeartbeatInterval and NodeTimeout: each node announces itself every
	// HeartbeatInterval; one silent for NodeTimeout is taken as dead and
	// its members leave. Default 1s and 3s.
	HeartbeatInterval Duration `json:"heartbeat_interval,omitempty"`
	NodeTimeout       Duration `json:"node_timeout,omitempty"`
}

// natsURL is the NATS URL in force: the flag's or environment's, else the
// file's. Empty: single-node mode.
func (c *Config) natsURL() string {
	if c.NATSURL != "" {
		return c.NATSURL
	}
	return c.File.NATS.URL
}

// Cluster reports whether the server runs as a node of a cluster (a NATS
// URL is configured).
func (c *Config) Cluster() bool { return strings.TrimSpace(c.natsURL()) != "" }

// backend is what the server's parts need of its state, single node or
// cluster.
type backend struct {
	history     session.ChannelHistory
	receipts    session.Receipts
	users       session.Users
	documents   session.Documents
	opLog       session.OpLog
	snapshots   session.Snapshots
	comments    session.Comments
	revocations revocationStore
	presence    session.PresenceBus
	ephemeral   session.EphemeralBus
	commits     func() float64
}

// revocationStore is auth.RevocationStore, named here to keep the import
// set small.
type revocationStore interface {
	RevokeToken(ctx context.Context, tokenID string, until time.Time) error
	RevokeUser(ctx context.Context, userID string, before time.Time) error
	Revocations(now time.Time) (tokens, users map[string]time.Time, err error)
	PruneRevocations(ctx context.Context, now time.Time) (int, error)
}

// openCluster connects to NATS and sets the JetStream store up.
func (m *Server) openCluster(ctx context.Context, namespaces map[string]*session.Namespace) (*natsstore.Store, error) {
	c := &m.Config
	nc := c.File.NATS
	limits := map[string]doc.HistoryLimit{}
	for name, ns := range namespaces {
		if ns.HistorySize > 0 {
			limits[name] = doc.HistoryLimit{MaxCount: ns.HistorySize, MaxAge: ns.HistoryAge}
		}
	}
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := natsstore.Open(octx, natsstore.Config{
		URL: c.natsURL(), Name: c.Node, CredsFile: nc.Creds, TLSCert: nc.TLSCert, TLSKey: nc.TLSKey, TLSCA: nc.TLSCA,
		Prefix: nc.Prefix, Replicas: nc.Replicas, Namespaces: limits, SnapshotEvery: c.File.SnapshotEvery,
		Limits:         doc.Limits{MaxLen: c.File.Limits.MaxDocLen},
		RequestTimeout: time.Duration(nc.RequestTimeout), HeartbeatInterval: time.Duration(nc.HeartbeatInterval),
		NodeTimeout: time.Duration(nc.NodeTimeout), Logger: m.Log,
	})
	if err != nil {
		if errors.Is(err, natsstore.ErrNoJetStream) {
			return nil, fmt.Errorf("cluster mode needs NATS with JetStream: %w", err)
		}
		return nil, fmt.Errorf("cluster mode: %w", err)
	}
	return st, nil
}

// clusterBackend is the backend of a cluster node: everything in
// JetStream, except system:stats, whose history each node keeps in memory
// (its own figures).
func clusterBackend(st *natsstore.Store) backend {
	return backend{
		history:  newLiveHistory(clusterHistory{st}, statsChannel),
		receipts: st, users: st, documents: st, opLog: st, snapshots: st, comments: st,
		revocations: st,
		presence:    presenceBus{p: st.Presence(), node: st.Node()},
		ephemeral:   st,
		commits:     func() float64 { return 0 },
	}
}

// registerClusterMetrics exposes the JetStream store's counters.
func (m *Server) registerClusterMetrics(st *natsstore.Store) {
	m.Metrics.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_cluster_op_conflicts_total",
			Help: "Op appends that lost the compare-and-append to another node (and were transformed and sent again)."},
			func() float64 { return float64(st.Stats().OpConflicts) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_cluster_message_retries_total",
			Help: "Channel publishes retried after another node took the offset."},
			func() float64 { return float64(st.Stats().MessageRetries) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_cluster_cas_retries_total",
			Help: "Compare-and-set retries on shared key-value records."},
			func() float64 { return float64(st.Stats().CASRetries) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_cluster_snapshots_total",
			Help: "Document snapshots this node wrote in the background."},
			func() float64 { return float64(st.Stats().Snapshots) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_cluster_connected",
			Help: "1 while this node is connected to NATS."},
			func() float64 {
				if st.Conn().Status() == nats.CONNECTED {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_open_documents",
			Help: "Documents loaded in memory."}, func() float64 {
			if m.Docs == nil {
				return 0
			}
			return float64(m.Docs.Loaded())
		}),
	)
}

// watchRevocations applies the revocations other nodes store to this
// node's verifier, so that a token revoked through one node is refused by
// every node at its next connect, refresh or HTTP request. (Applying one
// writes nothing: the store has it already.)
func watchRevocations(st *natsstore.Store, rev *auth.Revocations, log zerolog.Logger) (func(), error) {
	return st.WatchRevocations(func(kind, name string, at time.Time) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		switch kind {
		case "t":
			err = rev.RevokeToken(ctx, name, at)
		case "u":
			_, err = rev.RevokeUser(ctx, name, at)
		}
		if err != nil {
			log.Warn().Err(err).Msg("revocation from another node")
		}
	})
}

// clusterReady is /healthz in cluster mode: ready while connected to NATS.
func clusterReady(st *natsstore.Store) func() error {
	return func() error {
		if s := st.Conn().Status(); s != nats.CONNECTED {
			return fmt.Errorf("not connected to NATS (%s)", s)
		}
		return nil
	}
}

// clusterHistory is the hub's channel history on JetStream. Offsets are
// assigned by the store (PublishMessage), so the single-node append path
// is never taken for a shared channel; an epoch of a channel whose
// namespace keeps no history is kept in memory.
type clusterHistory struct{ st *natsstore.Store }

var (
	_ session.ChannelHistory   = clusterHistory{}
	_ session.SharedChannelLog = clusterHistory{}
)

func (h clusterHistory) AppendMessageAsync(msg doc.Message, _ doc.HistoryLimit, done func(error)) {
	done(fmt.Errorf("append to %q: in cluster mode messages go through PublishMessage: %w", msg.Channel, doc.ErrInvalid))
}

func (h clusterHistory) EnsureChannelAsync(_, epoch string, done func(string, error)) {
	done(epoch, nil)
}

func (h clusterHistory) ChannelState(channel string) (uint64, string, error) {
	return h.st.ChannelState(channel)
}

func (h clusterHistory) MessagesSince(channel string, offset uint64, limit int) ([]doc.Message, error) {
	return h.st.MessagesSince(channel, offset, limit)
}

func (h clusterHistory) Retract(ctx context.Context, channel string, offset uint64, by string) error {
	return h.st.Retract(ctx, channel, offset, by)
}

func (h clusterHistory) Shared(string) bool { return true }

func (h clusterHistory) PublishMessage(ctx context.Context, msg doc.Message) (doc.Message, string, error) {
	return h.st.PublishMessage(ctx, msg)
}

func (h clusterHistory) FollowChannel(ctx context.Context, channel string, after uint64, deliver func(doc.Message, string), onErr func(error)) (func(), error) {
	return h.st.FollowChannel(ctx, channel, after, deliver, onErr)
}

// presenceBus adapts natsstore's presence to the session's PresenceBus,
// leaving this node's own members out of what Watch reports.
type presenceBus struct {
	p    *natsstore.Presence
	node string
}

var _ session.PresenceBus = presenceBus{}

func (b presenceBus) Join(channel, clientID string, info json.RawMessage) error {
	return b.p.Join(channel, clientID, info)
}

func (b presenceBus) Update(channel, clientID string, info json.RawMessage) error {
	return b.p.Update(channel, clientID, info)
}

func (b presenceBus) Leave(channel, clientID string) error { return b.p.Leave(channel, clientID) }

func (b presenceBus) Watch(channel string, fn func(session.RemoteEvent)) ([]session.RemoteMember, func(), error) {
	members, stop, err := b.p.Watch(channel, func(ev natsstore.PresenceEvent) {
		if ev.Member.Node == b.node {
			return
		}
		fn(session.RemoteEvent{Kind: ev.Kind, Member: session.RemoteMember{Node: ev.Member.Node, ClientID: ev.Member.ClientID, Info: ev.Member.Info}})
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]session.RemoteMember, 0, len(members))
	for _, m := range members {
		if m.Node != b.node {
			out = append(out, session.RemoteMember{Node: m.Node, ClientID: m.ClientID, Info: m.Info})
		}
	}
	return out, stop, nil
}
