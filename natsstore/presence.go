package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Member is a client present in a channel, as presence knows it across
// nodes. Info is opaque here: the session's member record (user, state),
// replaced whole by an update.
type Member struct {
	Node     string          `json:"node"`
	ClientID string          `json:"client"`
	Info     json.RawMessage `json:"info,omitempty"`
}

// Kinds of presence events.
const (
	PresenceJoin   = "join"
	PresenceUpdate = "update"
	PresenceLeave  = "leave"
)

// PresenceEvent is a change of a channel's members on another node.
type PresenceEvent struct {
	Channel string
	Kind    string // PresenceJoin, PresenceUpdate or PresenceLeave
	Member  Member
}

// wire forms, JSON on core NATS.
type presEvent struct {
	Node   string          `json:"node"`
	Boot   string          `json:"boot"`
	Seq    uint64          `json:"seq"`
	Kind   string          `json:"kind"`
	Client string          `json:"client"`
	Info   json.RawMessage `json:"info,omitempty"`
}

type presSnapshot struct {
	Node    string   `json:"node"`
	Boot    string   `json:"boot"`
	Seq     uint64   `json:"seq"`
	Members []Member `json:"members"`
}

type heartbeat struct {
	Node string `json:"node"`
	Boot string `json:"boot"`
	Bye  bool   `json:"bye,omitempty"`
}

// Presence spreads channel membership between nodes over core NATS (not
// stored). Each node announces its own members' joins, updates and leaves
// on the channel's presence subject, which only nodes watching the channel
// subscribe to; a node starting to watch a channel asks every node for
// its members (a request on the channel's query subject, which every node
// answers, empty-handed or not) and keeps the table up to date from the
// events. Every node sends a heartbeat every HeartbeatInterval; a node not
// heard from for NodeTimeout is taken as dead and its members leave, on
// every node, within NodeTimeout + HeartbeatInterval of its last
// heartbeat. A node that closes says goodbye and its members leave at
// once. Events carry a per-node, per-channel sequence number, so that a
// gap (a lost core NATS message) triggers a fresh query, as does a node
// coming back or this node reconnecting.
type Presence struct {
	s    *Store
	node string
	boot string // a random id per Store: tells a restarted node from its former self
	// started is when presence started: until a NodeTimeout later this
	// node may not have heard of every other node yet, and a query waits
	// its whole timeout for answers.
	started time.Time

	mu       sync.Mutex                      // guards every field below
	local    map[string]map[string]Member    // channel → client → this node's members
	seq      map[string]uint64               // channel → this node's last event's number
	tracked  map[string]*tracked             // channels watched on this node
	nodes    map[string]*nodeState           // other nodes heard from
	ephemSub map[*nats.Subscription]struct{} // ephemeral subscriptions, closed with the store
	closed   bool
	subs     []*nats.Subscription // the node-wide subscriptions: queries, heartbeats
	quit     chan struct{}
}

// tracked is a channel this node watches: the members of every node.
type tracked struct {
	name     string
	sub      *nats.Subscription
	members  map[string]map[string]Member // node → client → member
	seqs     map[string]uint64            // node → last applied event number
	boots    map[string]string            // node → its boot id at that number
	watchers map[int]func(PresenceEvent)
	nextID   int
	ready    bool          // the first query is done: events reach the watchers
	readyCh  chan struct{} // closed when ready is set
}

type nodeState struct {
	last time.Time
	boot string
	dead bool
}

func newPresence(s *Store) (*Presence, error) {
	p := &Presence{
		s:        s,
		node:     s.cfg.Name,
		boot:     randomID(),
		started:  time.Now(),
		local:    make(map[string]map[string]Member),
		seq:      make(map[string]uint64),
		tracked:  make(map[string]*tracked),
		nodes:    make(map[string]*nodeState),
		ephemSub: make(map[*nats.Subscription]struct{}),
		quit:     make(chan struct{}),
	}
	q, err := s.nc.Subscribe(s.n.presQueryAll(), p.answerQuery)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	hb, err := s.nc.Subscribe(s.n.nodes(), p.heard)
	if err != nil {
		_ = q.Unsubscribe()
		return nil, fmt.Errorf("presence: %w", err)
	}
	p.subs = []*nats.Subscription{q, hb}
	if err := s.nc.Flush(); err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	p.beat(false)
	s.wg.Add(1)
	go p.loop()
	return p, nil
}

// Presence returns the store's presence.
func (s *Store) Presence() *Presence { return s.pres }

// beat sends this node's heartbeat.
func (p *Presence) beat(bye bool) {
	data, _ := json.Marshal(heartbeat{Node: p.node, Boot: p.boot, Bye: bye})
	_ = p.s.nc.Publish(p.s.n.nodes(), data)
}

// loop sends heartbeats, takes silent nodes out and resynchronises after
// a reconnect.
func (p *Presence) loop() {
	defer p.s.wg.Done()
	t := time.NewTicker(p.s.cfg.HeartbeatInterval)
	defer t.Stop()
	reconnects := p.s.nc.Stats().Reconnects
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		p.beat(false)
		if r := p.s.nc.Stats().Reconnects; r != reconnects {
			reconnects = r
			p.resyncAll()
		}
		now := time.Now()
		var dead []string
		p.mu.Lock()
		for name, n := range p.nodes {
			if !n.dead && now.Sub(n.last) > p.s.cfg.NodeTimeout {
				n.dead = true
				dead = append(dead, name)
			}
		}
		p.mu.Unlock()
		for _, name := range dead {
			p.s.log.Info().Str("peer", name).Msg("node silent: its members leave")
			p.dropNode(name)
		}
	}
}

// close says goodbye, stops the subscriptions and the loop.
func (p *Presence) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	subs := append([]*nats.Subscription(nil), p.subs...)
	for _, t := range p.tracked {
		subs = append(subs, t.sub)
	}
	for sub := range p.ephemSub {
		subs = append(subs, sub)
	}
	p.mu.Unlock()
	p.beat(true)
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	_ = p.s.nc.Flush()
	close(p.quit)
}

// heard handles a heartbeat.
func (p *Presence) heard(m *nats.Msg) {
	var hb heartbeat
	if json.Unmarshal(m.Data, &hb) != nil || hb.Node == "" || hb.Node == p.node && hb.Boot == p.boot {
		return
	}
	p.mu.Lock()
	n := p.nodes[hb.Node]
	if hb.Bye {
		if n != nil {
			n.dead = true
		}
		p.mu.Unlock()
		p.dropNode(hb.Node)
		return
	}
	first := n == nil
	if first {
		n = &nodeState{boot: hb.Boot}
		p.nodes[hb.Node] = n
	}
	// A node heard of for the first time may have members of channels
	// this node started watching before it knew of it (a query waits
	// only for the nodes it knows): ask again.
	back := first || n.dead || n.boot != hb.Boot
	restarted := n.boot != hb.Boot
	n.last, n.dead, n.boot = time.Now(), false, hb.Boot
	p.mu.Unlock()
	if restarted {
		p.dropNode(hb.Node) // its former self's members
	}
	if back {
		p.async(p.resyncAll) // off the heartbeat subscription: the queries wait
	}
}

// async runs fn on a goroutine of the store's, unless presence is closed.
func (p *Presence) async(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed { // (Close waits for the store's goroutines after closing presence)
		return
	}
	p.s.wg.Add(1)
	go func() {
		defer p.s.wg.Done()
		fn()
	}()
}

// noteNodeLocked starts the clock of a node first heard of through its
// presence rather than its heartbeat, so that its members leave if it dies
// before its first heartbeat arrives. Must be called with p.mu held.
func (p *Presence) noteNodeLocked(node, boot string) {
	if p.nodes[node] == nil {
		p.nodes[node] = &nodeState{last: time.Now(), boot: boot}
	}
}

// dropNode removes a node's members from every watched channel.
func (p *Presence) dropNode(node string) {
	var notes []note
	p.mu.Lock()
	for _, t := range p.tracked {
		for _, m := range t.members[node] {
			notes = append(notes, t.notesLocked(PresenceEvent{Channel: t.name, Kind: PresenceLeave, Member: m})...)
		}
		delete(t.members, node)
		delete(t.seqs, node)
		delete(t.boots, node)
	}
	p.mu.Unlock()
	deliver(notes)
}

// note is a watcher call to make outside the lock.
type note struct {
	fn func(PresenceEvent)
	ev PresenceEvent
}

func deliver(notes []note) {
	for _, n := range notes {
		n.fn(n.ev)
	}
}

// notesLocked returns the watcher calls for ev (none before the first
// query is done, nor for this node's members). Must be called with p.mu
// held.
func (t *tracked) notesLocked(ev PresenceEvent) []note {
	if !t.ready {
		return nil
	}
	out := make([]note, 0, len(t.watchers))
	for _, fn := range t.watchers {
		out = append(out, note{fn, ev})
	}
	return out
}

// Join announces a member of this node in channel (or, if the client is
// already there, an update).
func (p *Presence) Join(channel, clientID string, info json.RawMessage) error {
	return p.change(channel, clientID, info, PresenceJoin)
}

// Update replaces a member's info and announces it.
func (p *Presence) Update(channel, clientID string, info json.RawMessage) error {
	return p.change(channel, clientID, info, PresenceUpdate)
}

// Leave announces that a member of this node left channel.
func (p *Presence) Leave(channel, clientID string) error {
	return p.change(channel, clientID, nil, PresenceLeave)
}

func (p *Presence) change(channel, clientID string, info json.RawMessage, kind string) error {
	if err := checkID("channel", channel); err != nil {
		return err
	}
	if err := checkID("client id", clientID); err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	members := p.local[channel]
	_, present := members[clientID]
	switch kind {
	case PresenceLeave:
		if !present {
			p.mu.Unlock()
			return nil
		}
		delete(members, clientID)
		if len(members) == 0 {
			delete(p.local, channel)
		}
	case PresenceUpdate:
		if !present {
			p.mu.Unlock()
			return fmt.Errorf("presence update of %q in %q: not a member: %w", clientID, channel, ErrNotFound)
		}
		fallthrough
	default:
		if members == nil {
			members = make(map[string]Member)
			p.local[channel] = members
		}
		members[clientID] = Member{Node: p.node, ClientID: clientID, Info: info}
	}
	p.seq[channel]++
	ev := presEvent{Node: p.node, Boot: p.boot, Seq: p.seq[channel], Kind: kind, Client: clientID, Info: info}
	if t := p.tracked[channel]; t != nil {
		t.applyLocked(ev) // our own: no watcher call
	}
	data, _ := json.Marshal(ev)
	err := p.s.nc.Publish(p.s.n.pres(encode(channel)), data) // under p.mu: events leave in number order
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("presence %s in %q: %w", kind, channel, err)
	}
	return nil
}

// applyLocked applies an event to the table and returns it as a
// PresenceEvent, with ok false when it changes nothing or is stale. Must
// be called with p.mu held.
func (t *tracked) applyLocked(ev presEvent) (PresenceEvent, bool) {
	if t.boots[ev.Node] != ev.Boot {
		t.boots[ev.Node], t.seqs[ev.Node] = ev.Boot, 0
	}
	if ev.Seq <= t.seqs[ev.Node] {
		return PresenceEvent{}, false
	}
	t.seqs[ev.Node] = ev.Seq
	nm := t.members[ev.Node]
	old, present := nm[ev.Client]
	m := Member{Node: ev.Node, ClientID: ev.Client, Info: ev.Info}
	switch ev.Kind {
	case PresenceLeave:
		if !present {
			return PresenceEvent{}, false
		}
		delete(nm, ev.Client)
		return PresenceEvent{Channel: t.name, Kind: PresenceLeave, Member: old}, true
	default:
		if nm == nil {
			nm = make(map[string]Member)
			t.members[ev.Node] = nm
		}
		nm[ev.Client] = m
		kind := PresenceJoin
		if present {
			kind = PresenceUpdate
		}
		return PresenceEvent{Channel: t.name, Kind: kind, Member: m}, true
	}
}

// event handles a presence event of a watched channel.
func (p *Presence) event(t *tracked, m *nats.Msg) {
	var ev presEvent
	if json.Unmarshal(m.Data, &ev) != nil || ev.Node == "" || ev.Node == p.node {
		return
	}
	p.mu.Lock()
	if p.tracked[t.name] != t {
		p.mu.Unlock()
		return
	}
	p.noteNodeLocked(ev.Node, ev.Boot)
	gap := t.boots[ev.Node] == ev.Boot && ev.Seq > t.seqs[ev.Node]+1
	var notes []note
	if pe, ok := t.applyLocked(ev); ok {
		notes = t.notesLocked(pe)
	}
	p.mu.Unlock()
	deliver(notes)
	if gap {
		p.async(func() { p.resync(t.name) }) // a lost event: ask again
	}
}

// answerQuery answers another node's (or this node's) query for a
// channel's members with this node's own.
func (p *Presence) answerQuery(m *nats.Msg) {
	var q struct {
		Channel string `json:"channel"`
	}
	if json.Unmarshal(m.Data, &q) != nil || m.Reply == "" {
		return
	}
	p.mu.Lock()
	snap := presSnapshot{Node: p.node, Boot: p.boot, Seq: p.seq[q.Channel], Members: []Member{}}
	for _, mem := range p.local[q.Channel] {
		snap.Members = append(snap.Members, mem)
	}
	p.mu.Unlock()
	data, _ := json.Marshal(snap)
	_ = m.Respond(data)
}

// query asks every node for its members of channel and waits until every
// node known alive (and this one) has answered, or for the timeout.
func (p *Presence) query(channel string) ([]presSnapshot, error) {
	snaps, _, err := p.queryAll(channel)
	return snaps, err
}

// queryAll is query, also reporting whether every node answered.
func (p *Presence) queryAll(channel string) ([]presSnapshot, bool, error) {
	inbox := nats.NewInbox()
	replies := make(chan presSnapshot, 64)
	sub, err := p.s.nc.Subscribe(inbox, func(m *nats.Msg) {
		var snap presSnapshot
		if json.Unmarshal(m.Data, &snap) == nil && snap.Node != "" {
			select {
			case replies <- snap:
			default:
			}
		}
	})
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	want := map[string]bool{p.node: true}
	p.mu.Lock()
	for name, n := range p.nodes {
		if !n.dead {
			want[name] = true
		}
	}
	p.mu.Unlock()
	q, _ := json.Marshal(map[string]string{"channel": channel})
	if err := p.s.nc.PublishRequest(p.s.n.presQuery(encode(channel)), inbox, q); err != nil {
		return nil, false, err
	}
	var out []presSnapshot
	timeout := time.NewTimer(2 * p.s.cfg.HeartbeatInterval)
	defer timeout.Stop()
	young := time.Since(p.started) < p.s.cfg.NodeTimeout
	for len(want) > 0 || young {
		select {
		case snap := <-replies:
			delete(want, snap.Node)
			out = append(out, snap)
		case <-timeout.C:
			if young && len(want) == 0 {
				return out, true, nil
			}
			return out, false, nil // the silent ones will be taken as dead, or answer a later query
		case <-p.quit:
			return out, false, ErrClosed
		}
	}
	return out, true, nil
}

// applySnapshots replaces the members of each answering node (not this
// one, whose members come from p.local) and returns the watcher calls for
// the differences. Must be called with p.mu held.
func (p *Presence) applySnapshotsLocked(t *tracked, snaps []presSnapshot) []note {
	var notes []note
	for _, snap := range snaps {
		if snap.Node == p.node {
			continue
		}
		p.noteNodeLocked(snap.Node, snap.Boot)
		if n := p.nodes[snap.Node]; n.dead || n.boot != snap.Boot {
			continue
		}
		if t.boots[snap.Node] == snap.Boot && snap.Seq < t.seqs[snap.Node] {
			continue // events newer than the snapshot were applied
		}
		old := t.members[snap.Node]
		nm := make(map[string]Member, len(snap.Members))
		for _, m := range snap.Members {
			m.Node = snap.Node
			nm[m.ClientID] = m
			if o, ok := old[m.ClientID]; !ok {
				notes = append(notes, t.notesLocked(PresenceEvent{Channel: t.name, Kind: PresenceJoin, Member: m})...)
			} else if string(o.Info) != string(m.Info) {
				notes = append(notes, t.notesLocked(PresenceEvent{Channel: t.name, Kind: PresenceUpdate, Member: m})...)
			}
		}
		for id, o := range old {
			if _, ok := nm[id]; !ok {
				notes = append(notes, t.notesLocked(PresenceEvent{Channel: t.name, Kind: PresenceLeave, Member: o})...)
			}
		}
		t.members[snap.Node] = nm
		t.seqs[snap.Node], t.boots[snap.Node] = snap.Seq, snap.Boot
	}
	return notes
}

// Watch starts watching channel's members on every node: it returns the
// members now (this node's included) and then calls fn for each join,
// update and leave of another node's member (this node's own members are
// the caller's to announce locally), until stop is called. fn runs on a
// NATS goroutine, must not block and must not call back into Presence.
// Several watchers of one channel share one subscription.
func (p *Presence) Watch(channel string, fn func(PresenceEvent)) (members []Member, stop func(), err error) {
	if err := checkID("channel", channel); err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, ErrClosed
	}
	t := p.tracked[channel]
	fresh := t == nil
	if fresh {
		t = &tracked{name: channel, members: make(map[string]map[string]Member), seqs: make(map[string]uint64),
			boots: make(map[string]string), watchers: make(map[int]func(PresenceEvent)), readyCh: make(chan struct{})}
		sub, err := p.s.nc.Subscribe(p.s.n.pres(encode(channel)), func(m *nats.Msg) { p.event(t, m) })
		if err != nil {
			p.mu.Unlock()
			return nil, nil, fmt.Errorf("watch presence of %q: %w", channel, err)
		}
		t.sub = sub
		p.tracked[channel] = t
	}
	id := t.nextID
	t.nextID++
	t.watchers[id] = fn
	p.mu.Unlock()
	stop = func() { p.unwatch(t, id) }
	if fresh {
		// The subscription is in place before the query goes out, so no
		// event falls between the answers and the live stream.
		if err := p.s.nc.Flush(); err != nil {
			stop()
			return nil, nil, err
		}
		snaps, complete, err := p.queryAll(channel)
		if err != nil && !errors.Is(err, ErrClosed) {
			stop()
			return nil, nil, fmt.Errorf("watch presence of %q: %w", channel, err)
		}
		if !complete && err == nil {
			// A node was slow to answer (or is dying): ask again in a
			// moment, so that its members are not missing until its
			// next event.
			p.async(func() {
				select {
				case <-time.After(p.s.cfg.HeartbeatInterval):
					p.resync(channel)
				case <-p.quit:
				}
			})
		}
		p.mu.Lock()
		p.applySnapshotsLocked(t, snaps) // not ready: no watcher calls
		t.ready = true
		close(t.readyCh)
		p.mu.Unlock()
	} else {
		p.waitReady(t)
	}
	return p.membersOf(channel), stop, nil
}

// waitReady waits until the first query of t is done (or the store
// closes).
func (p *Presence) waitReady(t *tracked) {
	select {
	case <-t.readyCh:
	case <-p.quit:
	}
}

// unwatch removes a watcher; the last one unsubscribes.
func (p *Presence) unwatch(t *tracked, id int) {
	p.mu.Lock()
	delete(t.watchers, id)
	last := len(t.watchers) == 0 && p.tracked[t.name] == t
	if last {
		delete(p.tracked, t.name)
	}
	p.mu.Unlock()
	if last {
		_ = t.sub.Unsubscribe()
	}
}

// resyncAll queries every watched channel again.
func (p *Presence) resyncAll() {
	p.mu.Lock()
	names := make([]string, 0, len(p.tracked))
	for name := range p.tracked {
		names = append(names, name)
	}
	p.mu.Unlock()
	for _, name := range names {
		p.resync(name)
	}
}

// resync queries one watched channel again and reports the differences.
func (p *Presence) resync(channel string) {
	snaps, err := p.query(channel)
	if err != nil {
		return
	}
	p.mu.Lock()
	t := p.tracked[channel]
	var notes []note
	if t != nil {
		notes = p.applySnapshotsLocked(t, snaps)
	}
	p.mu.Unlock()
	deliver(notes)
}

// membersOf lists a watched channel's members, this node's included.
func (p *Presence) membersOf(channel string) []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []Member{}
	for _, m := range p.local[channel] {
		out = append(out, m)
	}
	if t := p.tracked[channel]; t != nil {
		for node, nm := range t.members {
			if node == p.node {
				continue
			}
			for _, m := range nm {
				out = append(out, m)
			}
		}
	}
	return out
}

// Members lists channel's members on every node: from the table when the
// channel is watched here, else by asking every node.
func (p *Presence) Members(ctx context.Context, channel string) ([]Member, error) {
	p.mu.Lock()
	_, watched := p.tracked[channel]
	p.mu.Unlock()
	if watched {
		return p.membersOf(channel), nil
	}
	snaps, err := p.query(channel)
	if err != nil {
		return nil, err
	}
	out := []Member{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, snap := range snaps {
		if n := p.nodes[snap.Node]; n != nil && n.dead {
			continue
		}
		for _, m := range snap.Members {
			m.Node = snap.Node
			out = append(out, m)
		}
	}
	return out, ctx.Err()
}

// Ephemeral kinds: what an ephemeral subject carries.
const (
	EphemeralChannel = "ch"  // a channel's ephemeral messages (and retractions, receipts)
	EphemeralDoc     = "doc" // a document's cursors and other live frames
)

// hdrNode names the node that published an ephemeral message.
const hdrNode = "Tandem-Node"

// PublishEphemeral sends payload to every other node subscribed to the
// channel's or document's ephemeral subject, over core NATS: at most once,
// not stored, in publish order per node.
func (s *Store) PublishEphemeral(kind, name string, payload []byte) error {
	if kind != EphemeralChannel && kind != EphemeralDoc {
		return fmt.Errorf("ephemeral kind %q: %w", kind, ErrInvalid)
	}
	if err := checkID("name", name); err != nil {
		return err
	}
	m := nats.NewMsg(s.n.live(kind, encode(name)))
	m.Header.Set(hdrNode, s.cfg.Name)
	m.Data = payload
	if err := s.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("ephemeral to %s %q: %w", kind, name, err)
	}
	return nil
}

// SubscribeEphemeral calls fn with every ephemeral payload other nodes
// publish for the channel or document, until unsubscribe is called. fn
// runs on a NATS goroutine and must not block.
func (s *Store) SubscribeEphemeral(kind, name string, fn func(payload []byte)) (unsubscribe func(), err error) {
	if kind != EphemeralChannel && kind != EphemeralDoc {
		return nil, fmt.Errorf("ephemeral kind %q: %w", kind, ErrInvalid)
	}
	if err := checkID("name", name); err != nil {
		return nil, err
	}
	p := s.pres
	sub, err := s.nc.Subscribe(s.n.live(kind, encode(name)), func(m *nats.Msg) {
		if m.Header.Get(hdrNode) != s.cfg.Name {
			fn(m.Data)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe ephemeral %s %q: %w", kind, name, err)
	}
	p.mu.Lock()
	p.ephemSub[sub] = struct{}{}
	p.mu.Unlock()
	if err := s.nc.Flush(); err != nil {
		return nil, err
	}
	return func() {
		p.mu.Lock()
		delete(p.ephemSub, sub)
		p.mu.Unlock()
		_ = sub.Unsubscribe()
	}, nil
}
