package natsstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
)

// Errors returned by this package, wrapped with context; test for them with
// [errors.Is]. Those that have a counterpart in doc wrap it, so that the
// session can test for doc.ErrNotFound and the like whatever the backend.
var (
	// ErrNoJetStream: the NATS server answered, but JetStream is not
	// enabled on it (a plain nats-server without -js) or not for this
	// account.
	ErrNoJetStream = errors.New("natsstore: JetStream is not available")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("natsstore: closed")
	// ErrNotFound: no such document, comment or message. It wraps
	// doc.ErrNotFound.
	ErrNotFound = fmt.Errorf("natsstore: %w", doc.ErrNotFound)
	// ErrExists: CreateDoc of an id that exists. It wraps doc.ErrExists.
	ErrExists = fmt.Errorf("natsstore: %w", doc.ErrExists)
	// ErrConflict: an append lost the compare-and-append: another node
	// appended at that version first (or the version does not follow on
	// from the log). Nothing was written. The error is a [*ConflictError].
	// It is doc.ErrConflict, so that the session tests for it whatever the
	// backend.
	ErrConflict = doc.ErrConflict
	// ErrCompacted: the versions asked for lie before the document's
	// compaction point. It wraps doc.ErrCompacted.
	ErrCompacted = fmt.Errorf("natsstore: %w", doc.ErrCompacted)
	// ErrInvalid: bad input (an empty id, a negative version, an op or
	// message larger than the server's max_payload). Nothing was written.
	// It wraps doc.ErrInvalid.
	ErrInvalid = fmt.Errorf("natsstore: %w", doc.ErrInvalid)
	// ErrCorrupt: a stored record does not decode.
	ErrCorrupt = errors.New("natsstore: corrupt record")
	// ErrContended: a compare-and-set on a shared record (receipts,
	// retractions, a channel's epoch) kept losing to other writers and
	// gave up after maxCASAttempts. Nothing was written by this call.
	ErrContended = errors.New("natsstore: too much contention")
)

// A ConflictError says where an append did not follow on: Have is the
// next version (or offset) the log holds now, Got the first version the
// append carried. It matches [ErrConflict] under [errors.Is]. It is
// doc.ConflictError, shared with the session.
type ConflictError = doc.ConflictError

// Defaults for zero Config fields.
const (
	DefaultPrefix            = "tandem"
	DefaultReplicas          = 1
	DefaultSnapshotEvery     = 1000
	DefaultRequestTimeout    = 10 * time.Second
	DefaultDeleteMarkerTTL   = 24 * time.Hour
	DefaultHeartbeatInterval = time.Second
	DefaultNodeTimeout       = 3 * time.Second
	DefaultDuplicateWindow   = 2 * time.Minute
)

// maxCASAttempts bounds the retries of a compare-and-set on a shared
// key-value record before ErrContended.
const maxCASAttempts = 64

// maxIDLen bounds ids and names, as in storage.
const maxIDLen = 1024

var prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Config configures a Store. Every node of one cluster must use the same
// Prefix, Namespaces and SnapshotEvery.
type Config struct {
	// URL is the NATS server URL, or several separated by commas
	// ("nats://a:4222,nats://b:4222"). Required by Open; unused by New.
	URL string
	// Name names this node: the NATS connection's name and the owner of
	// the presence entries this node announces. By default the host name
	// and a random suffix.
	Name string
	// CredsFile is a NATS credentials file (JWT and NKey seed); empty:
	// none.
	CredsFile string
	// TLSCert and TLSKey are a client certificate and its key (PEM files);
	// TLSCA a CA file to verify the servers with. Empty: none.
	TLSCert, TLSKey, TLSCA string

	// Prefix starts every stream, bucket and subject name, so that several
	// Tandem deployments (or tests) can share one NATS system: lower-case
	// letters, digits, `_` and `-`. By default "tandem".
	Prefix string
	// Replicas is the replica count of every stream and bucket created:
	// 1 for a single NATS server, 3 for a three-server cluster. By default
	// 1. An existing stream is updated to it at start.
	Replicas int
	// Namespaces gives the history limits of each channel namespace that
	// keeps history (namespace name → limits; "" is the default namespace,
	// used by every namespace not listed). Each gets a stream of its own
	// whose per-subject message limit and maximum age are these limits.
	// A namespace absent from the map, when "" is absent too, keeps no
	// history: PublishMessage fails for it. Nil: the single default
	// namespace with 100 messages and 24 hours.
	Namespaces map[string]doc.HistoryLimit
	// SnapshotEvery is how many ops apart the background snapshots of a
	// document are. By default DefaultSnapshotEvery (1000).
	SnapshotEvery int
	// Limits are the document limits Import checks (zero fields: doc's
	// defaults), as a single node's storage.Config.Limits.
	Limits doc.Limits
	// DeleteMarkerTTL is how long the marker a deleted document leaves on
	// its op subject lives; while it does, a node that still appends to
	// the deleted document gets ErrNotFound. By default 24 hours.
	DeleteMarkerTTL time.Duration
	// RequestTimeout bounds each JetStream request. By default 10 s.
	RequestTimeout time.Duration
	// HeartbeatInterval is how often this node announces itself for
	// presence; NodeTimeout how long a node may stay silent before the
	// others drop its members. By default 1 s and 3 s: a dead node's
	// members leave within NodeTimeout + HeartbeatInterval.
	HeartbeatInterval, NodeTimeout time.Duration

	// Logger receives lifecycle lines and background failures. The zero
	// Logger logs nothing.
	Logger zerolog.Logger
	// Now returns the current time. By default time.Now.
	Now func() time.Time
}

// withDefaults returns cfg with every zero field set and checks the rest.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(cfg.Prefix) {
		return cfg, fmt.Errorf("prefix %q: lower-case letters, digits, _ and - only: %w", cfg.Prefix, ErrInvalid)
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = DefaultReplicas
	}
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return cfg, fmt.Errorf("replicas %d: 1 to 5: %w", cfg.Replicas, ErrInvalid)
	}
	if cfg.Namespaces == nil {
		cfg.Namespaces = map[string]doc.HistoryLimit{"": {MaxCount: 100, MaxAge: 24 * time.Hour}}
	}
	for ns, l := range cfg.Namespaces {
		if l.MaxCount < 0 || l.MaxAge < 0 {
			return cfg, fmt.Errorf("namespace %q: negative history limit: %w", ns, ErrInvalid)
		}
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	if cfg.DeleteMarkerTTL <= 0 {
		cfg.DeleteMarkerTTL = DefaultDeleteMarkerTTL
	}
	if cfg.DeleteMarkerTTL < time.Second {
		cfg.DeleteMarkerTTL = time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = DefaultNodeTimeout
	}
	if cfg.NodeTimeout < 2*cfg.HeartbeatInterval {
		cfg.NodeTimeout = 2 * cfg.HeartbeatInterval
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "node"
		}
		cfg.Name = host + "-" + randomID()[:6]
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// Store is Tandem's state on NATS JetStream. All methods are safe for
// concurrent use. A Store owns the goroutines of its async appends,
// snapshotter and presence; Close stops them.
type Store struct {
	cfg   Config
	log   zerolog.Logger
	nc    *nats.Conn
	ownNC bool // Close closes nc
	js    jetstream.JetStream
	n     names

	ops      jetstream.Stream
	channels map[string]jetstream.Stream // by namespace ("" the default)
	kvDocs   jetstream.KeyValue
	kvSnaps  jetstream.KeyValue
	kvCmts   jetstream.KeyValue
	kvRcpt   jetstream.KeyValue
	kvRetr   jetstream.KeyValue
	kvUsers  jetstream.KeyValue
	kvNames  jetstream.KeyValue
	kvRevoke jetstream.KeyValue
	chunk    int // snapshot chunk size, bytes
	maxBatch int // bytes of ops in one message

	tails   *tailCache
	refs    refCache
	chans   chanCache
	writers *writers
	snapper *snapshotter
	pres    *Presence

	mu     sync.Mutex // guards closed and the counters below
	closed bool
	stats  Stats

	wg   sync.WaitGroup // background goroutines
	quit chan struct{}

	// consumerFault, set by tests before use, fails scan's ordered
	// consumer before the message at sequence next when it returns an
	// error.
	consumerFault func(next uint64) error
	// consumerLag, set by tests before use, makes scan's ordered consumer
	// report nothing pending after the message at seq when it returns
	// true, as one on a replica that lags behind does.
	consumerLag func(seq uint64) bool
}

// Stats counts what a Store did since it opened, for metrics and tests.
type Stats struct {
	// OpConflicts counts op appends that lost the compare-and-append.
	OpConflicts int64
	// MessageRetries counts channel publishes retried after losing the
	// compare-and-append on the channel's subject.
	MessageRetries int64
	// CASRetries counts retries of compare-and-set on key-value records.
	CASRetries int64
	// Snapshots counts background snapshots written.
	Snapshots int64
}

// Stats returns the counters so far.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Store) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Open connects to NATS at cfg.URL and calls New; the Store owns the
// connection and closes it on Close. The connection reconnects forever
// (a NATS server restarting is a pause, not a failure).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, fmt.Errorf("no NATS URL: %w", ErrInvalid)
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(200 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.URL, err)
	}
	s, err := New(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.ownNC = true
	return s, nil
}

// New sets up a Store on an open connection: it checks that JetStream is
// available (ErrNoJetStream if not), creates or updates the streams and
// buckets (see the package documentation) with cfg.Replicas replicas, and
// starts the snapshotter and presence. The caller keeps the connection;
// Close does not close it.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.RequestTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Store{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("component", "natsstore").Str("node", cfg.Name).Logger(),
		nc:       nc,
		js:       js,
		n:        newNames(cfg.Prefix),
		channels: make(map[string]jetstream.Stream),
		tails:    newTailCache(4096),
		refs:     refCache{m: make(map[string]*docRef)},
		quit:     make(chan struct{}),
	}
	if err := s.checkJetStream(ctx); err != nil {
		return nil, err
	}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	mp := int(nc.MaxPayload())
	s.chunk = min(512<<10, mp/2)
	s.maxBatch = mp / 2
	s.writers = newWriters(s)
	s.snapper = newSnapshotter(s)
	s.wg.Add(1)
	go s.snapper.run()
	if s.pres, err = newPresence(s); err != nil {
		s.Close()
		return nil, err
	}
	s.log.Info().Str("prefix", cfg.Prefix).Int("replicas", cfg.Replicas).Msg("natsstore ready")
	return s, nil
}

// checkJetStream fails with ErrNoJetStream when the server has no
// JetStream for this account. A server that does not answer in time (one
// just restarted may take a while to recover its JetStream state) is asked
// again until ctx ends.
func (s *Store) checkJetStream(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		_, err := s.js.AccountInfo(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
			errors.Is(err, nats.ErrNoResponders):
			return fmt.Errorf("%w on %s (%v): start nats-server with -js, or add a jetstream {} block to its configuration",
				ErrNoJetStream, s.nc.ConnectedUrlRedacted(), err)
		case ctx.Err() == nil && transient(err):
			s.log.Warn().Err(err).Int("attempt", attempt+1).Msg("JetStream account info: no answer yet; asking again")
			backoff(ctx, attempt)
		default:
			return fmt.Errorf("JetStream account info from %s: %w", s.nc.ConnectedUrlRedacted(), err)
		}
	}
}

// setup creates or updates every stream and bucket.
func (s *Store) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(4*s.cfg.RequestTimeout, time.Minute))
	defer cancel()
	var err error
	s.ops, err = s.ensureStream(ctx, jetstream.StreamConfig{
		Name:              s.n.opsStream,
		Description:       "Tandem: each document's op log, one subject per document incarnation",
		Subjects:          []string{s.n.prefix + ".ops.>"},
		Storage:           jetstream.FileStorage,
		Replicas:          s.cfg.Replicas,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
		Duplicates:        DefaultDuplicateWindow,
		AllowRollup:       true, // a deleted document's marker replaces its ops
		AllowMsgTTL:       true, // and expires
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return err
	}
	nss := make([]string, 0, len(s.cfg.Namespaces))
	for ns := range s.cfg.Namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		lim := s.cfg.Namespaces[ns]
		perSubject := int64(-1)
		if lim.MaxCount > 0 {
			// The channel's epoch record shares the per-subject limit but
			// lives on its own subject, so it does not count here.
			perSubject = int64(lim.MaxCount)
		}
		st, err := s.ensureStream(ctx, jetstream.StreamConfig{
			Name:              s.n.chanStream(ns),
			Description:       fmt.Sprintf("Tandem: history of the channels of namespace %q", ns),
			Subjects:          []string{s.n.chanSubjects(ns)},
			Storage:           jetstream.FileStorage,
			Replicas:          s.cfg.Replicas,
			MaxMsgs:           -1,
			MaxBytes:          -1,
			MaxMsgsPerSubject: perSubject,
			MaxAge:            lim.MaxAge,
			Duplicates:        min(DefaultDuplicateWindow, nonZero(lim.MaxAge, DefaultDuplicateWindow)),
			AllowMsgTTL:       true, // epoch records never expire
			Discard:           jetstream.DiscardOld,
		})
		if err != nil {
			return err
		}
		s.channels[ns] = st
	}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
		what string
	}{
		{&s.kvDocs, s.n.bucket("docs"), "document metadata by id"},
		{&s.kvSnaps, s.n.bucket("snaps"), "document snapshots"},
		{&s.kvCmts, s.n.bucket("comments"), "document comments"},
		{&s.kvRcpt, s.n.bucket("receipts"), "read receipts by channel"},
		{&s.kvRetr, s.n.bucket("retractions"), "retracted channel messages by channel"},
		{&s.kvUsers, s.n.bucket("users"), "users by id"},
		{&s.kvNames, s.n.bucket("usernames"), "user ids by name"},
		{&s.kvRevoke, s.n.bucket("revocations"), "revoked tokens and users"},
	} {
		if *b.kv, err = s.ensureBucket(ctx, b.name, "Tandem: "+b.what); err != nil {
			return err
		}
	}
	return nil
}

func nonZero(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// ensureStream creates a stream or updates it to cfg, unless it is there
// as wanted already (nodes starting after the first, or again, change
// nothing). On a JetStream cluster, nodes starting together create the
// same streams at once, and a request that meets a stream another node is
// creating may go unanswered; so each attempt is bounded (a few seconds,
// at most RequestTimeout) and retried until ctx ends, the stream then
// being there as wanted.
func (s *Store) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var st jetstream.Stream
	err := s.setupStep(ctx, "stream "+cfg.Name, func(ctx context.Context) error {
		var err error
		st, err = s.js.Stream(ctx, cfg.Name)
		switch {
		case err == nil && sameStream(st.CachedInfo().Config, cfg):
		case err == nil || errors.Is(err, jetstream.ErrStreamNotFound):
			st, err = s.js.CreateOrUpdateStream(ctx, cfg)
		}
		return err
	})
	if err != nil {
		hint := ""
		if cfg.Replicas > 1 {
			hint = fmt.Sprintf(" (replicas %d needs a JetStream cluster of at least %d servers)", cfg.Replicas, cfg.Replicas)
		}
		return nil, fmt.Errorf("create or update stream %s%s: %w", cfg.Name, hint, err)
	}
	return st, nil
}

// setupStep runs fn, a request of the setup at start, until it succeeds,
// fails for good, or ctx ends. Each attempt is bounded (a few seconds, at
// most RequestTimeout): on a cluster whose nodes start together, or that
// elects leaders, a request may go unanswered, and one wait for the whole
// of ctx was seen to use up a node's start.
func (s *Store) setupStep(ctx context.Context, what string, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(s.cfg.RequestTimeout, time.Duration(2+attempt)*time.Second))
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) || apiCode(err) == errCodeReplicasNotSupported {
			return err
		}
		s.log.Debug().Err(err).Str("what", what).Int("attempt", attempt+1).Msg("setup retried")
		backoff(ctx, attempt)
	}
}

// errCodeReplicasNotSupported is JetStream's answer to replicas > 1 on a
// server that is not part of a cluster: no retry changes it.
const errCodeReplicasNotSupported jetstream.ErrorCode = 10074

// sameStream reports whether a stream's configuration has every setting
// Tandem chooses as want has it.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Replicas == want.Replicas && have.Storage == want.Storage &&
		have.MaxMsgs == want.MaxMsgs && have.MaxBytes == want.MaxBytes && have.MaxMsgsPerSubject == want.MaxMsgsPerSubject &&
		have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates && have.AllowRollup == want.AllowRollup &&
		have.AllowMsgTTL == want.AllowMsgTTL && have.Discard == want.Discard && have.DenyDelete == want.DenyDelete &&
		have.AllowDirect == want.AllowDirect && have.Description == want.Description
}

// ensureBucket creates a key-value bucket keeping one revision per key.
// It is the stream a KV bucket is, written out so that AllowDirect stays
// off: direct gets may be answered by a replica that lags behind, and
// every node must read what another has just written (a document created
// on node A is opened on node C the next moment).
func (s *Store) ensureBucket(ctx context.Context, bucket, desc string) (jetstream.KeyValue, error) {
	_, err := s.ensureStream(ctx, jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       desc,
		Subjects:          []string{"$KV." + bucket + ".>"},
		Storage:           jetstream.FileStorage,
		Replicas:          s.cfg.Replicas,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Duplicates:        DefaultDuplicateWindow,
		AllowRollup:       true,
		DenyDelete:        true,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       false,
	})
	if err != nil {
		return nil, err
	}
	var kv jetstream.KeyValue
	err = s.setupStep(ctx, "bucket "+bucket, func(ctx context.Context) error {
		var err error
		kv, err = s.js.KeyValue(ctx, bucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bind bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// Close stops presence (announcing this node's departure), waits for the
// appends in flight and the snapshotter, and closes the connection if Open
// made it. Calls after Close fail with ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.pres != nil {
		s.pres.close()
	}
	if s.writers != nil {
		s.writers.wait()
	}
	close(s.quit)
	s.wg.Wait()
	if s.ownNC {
		s.nc.Close()
	}
	s.log.Info().Msg("natsstore closed")
	return nil
}

// isClosed reports whether Close was called.
func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Node returns this node's name.
func (s *Store) Node() string { return s.cfg.Name }

// Conn returns the NATS connection.
func (s *Store) Conn() *nats.Conn { return s.nc }

// reqCtx returns a context bounded by RequestTimeout.
func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// names computes the names of streams, buckets and subjects.
type names struct {
	prefix    string
	opsStream string
}

func newNames(prefix string) names {
	return names{prefix: prefix, opsStream: strings.ToUpper(prefix) + "_OPS"}
}

// opsSubject is the subject of one document incarnation's ops.
func (n names) opsSubject(docTok, epoch string) string {
	return n.prefix + ".ops." + docTok + "." + epoch
}

// chanStream is the stream of a namespace's channels.
func (n names) chanStream(ns string) string {
	return strings.ToUpper(n.prefix) + "_CH_" + encode(ns)
}

// chanSubjects is the subject filter of a namespace's stream.
func (n names) chanSubjects(ns string) string {
	return n.prefix + ".ch." + encode(ns) + ".>"
}

// chanBase is the common prefix of a channel's subjects: messages on
// base.m, its epoch record on base.e.
func (n names) chanBase(ns, channel string) string {
	return n.prefix + ".ch." + encode(ns) + "." + encode(channel)
}

func (n names) bucket(what string) string { return n.prefix + "_" + what }

// core NATS subjects (not stored).
func (n names) live(kind, tok string) string { return n.prefix + ".live." + kind + "." + tok }
func (n names) pres(tok string) string       { return n.prefix + ".pres." + tok }
func (n names) presQuery(tok string) string  { return n.prefix + ".presq." + tok }
func (n names) presQueryAll() string         { return n.prefix + ".presq.*" }
func (n names) nodes() string                { return n.prefix + ".nodes" }

// checkID validates an id used in a key: non-empty, at most maxIDLen
// bytes, valid UTF-8.
func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty %s: %w", what, ErrInvalid)
	case len(id) > maxIDLen:
		return fmt.Errorf("%s of %d bytes, at most %d: %w", what, len(id), maxIDLen, ErrInvalid)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8: %w", what, ErrInvalid)
	}
	return nil
}

// randomID returns 16 random hex digits.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// apiCode returns the JetStream API error code in err, or 0.
func apiCode(err error) jetstream.ErrorCode {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode
	}
	return 0
}

// isWrongLast reports a lost compare-and-append: the subject's last
// sequence was not the one expected. On a replicated stream the server
// also answers so while another expectation on the subject is in flight.
func isWrongLast(err error) bool {
	c := apiCode(err)
	return c == jetstream.JSErrCodeStreamWrongLastSequence || c == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// isTooLarge reports a message over the server's max_payload.
func isTooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || apiCode(err) == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// corrupt reports a stored record that does not decode.
func corrupt(what string, err error) error {
	return fmt.Errorf("%s: %v: %w", what, err, ErrCorrupt)
}
