package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/proto"
)

// PresenceConfig is the presence scenario: Conns connections join one
// full-presence channel (batched presence; no switch to count mode unless
// Switch), then Churn random leaves, rejoins and state changes; at the end
// every member's view of the room is checked.
type PresenceConfig struct {
	// Conns is how many members join. By default 10,000.
	Conns int
	// Churn is how many random changes follow the joins: a member leaves,
	// rejoins, or sets its presence state. By default 0.
	Churn int
	// Track is how many members (the first ones) decode every presence
	// frame and keep the member list; the others only count frames and
	// read the member count from them, so that the load generator stays
	// light. The tracked members read the whole list page by page at the
	// end, and must see the room exactly. By default 20; -1 tracks all.
	Track int
	// Dialers is how many members connect at once. By default 64.
	Dialers int
	// Seed makes the churn reproducible; 0 picks one (reported).
	Seed uint64
	// Switch puts the room in a full-presence namespace with the server's
	// default switch to count mode (above 1,000 members, back below four
	// fifths of that), as a namespace configured with full presence and
	// nothing else has. Without it the room lists every member at any
	// size, which costs every member a record of every other: N² records.
	Switch bool
}

// presenceNamespace is the namespace a started server has for the
// scenario: full presence that never switches to count mode, with the
// default batching window, presenceWindow; switchNamespace is the same
// with the server's default switch to count mode.
const (
	presenceNamespace = "benchroom"
	switchNamespace   = "benchswitch"
	presenceWindow    = 100 * time.Millisecond
)

// Presence runs the presence scenario.
func Presence(ctx context.Context, opts Options, cfg PresenceConfig) (*Result, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 10000
	}
	if cfg.Track == 0 {
		cfg.Track = 20
	}
	if cfg.Track < 0 || cfg.Track > cfg.Conns {
		cfg.Track = cfg.Conns
	}
	if cfg.Dialers <= 0 {
		cfg.Dialers = 64
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	res := newResult("presence", map[string]any{"conns": cfg.Conns, "churn": cfg.Churn, "tracked": cfg.Track, "seed": cfg.Seed, "switch": cfg.Switch})
	limit := raiseFileLimit()
	var tg *target
	if opts.Server == "" && limit > 0 && limit < uint64(2*cfg.Conns+500) {
		cs, err := startChildServer(ctx, opts)
		if err != nil {
			return nil, err
		}
		defer cs.stop()
		tg = &target{httpURL: cs.httpURL, wsURL: cs.wsURL}
		res.Notes = append(res.Notes, "server in a child process (file limit)")
	} else {
		var stop func()
		var err error
		if tg, stop, err = start(ctx, opts); err != nil {
			return nil, err
		}
		defer stop()
	}
	namespace := presenceNamespace
	if cfg.Switch {
		namespace = switchNamespace
	}
	if opts.Server != "" {
		res.Notes = append(res.Notes, "the server must have a namespace "+presenceNamespace+" with full presence and no switch to count mode, and "+switchNamespace+" with full presence")
	}
	channel := fmt.Sprintf("%s:room-%d", namespace, time.Now().UnixNano())

	members := make([]*presenceMember, cfg.Conns)
	defer func() {
		for _, m := range members {
			if m != nil {
				m.close()
			}
		}
	}()
	// Join: all at once, Dialers at a time.
	began := time.Now()
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.Dialers)
	for i := range members {
		if firstErr.Load() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m, err := dialPresence(ctx, tg.wsURL, opts.Token, fmt.Sprintf("p%05d", i), channel, i < cfg.Track)
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			members[i] = m
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, fmt.Errorf("join: %w", *p)
	}
	joined := time.Since(began)

	// Everyone's count reaches the room's size once the last batch is out.
	truth := newRoomTruth(members)
	if err := waitPresence(ctx, 2*time.Minute, func() bool { return converged(members, truth, false) == "" }); err != nil {
		res.fail("after the joins: %s", converged(members, truth, false))
		counts := map[int]int{}
		for _, m := range members {
			m.mu.Lock()
			counts[m.count]++
			m.mu.Unlock()
		}
		res.Notes = append(res.Notes, fmt.Sprintf("counts seen: %v", counts))
		if tg.srv != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("the hub lists %d members", len(tg.srv.Hub.Members(channel))))
		}
		return res, nil
	}
	settled := time.Since(began)
	var frames []int
	for _, m := range members {
		frames = append(frames, int(m.frames.Load()))
	}
	slices.Sort(frames)
	sum := 0
	for _, f := range frames {
		sum += f
	}
	res.Figures["join_seconds"] = joined.Seconds()
	res.Figures["settled_seconds"] = settled.Seconds()
	res.Figures["joins_per_sec"] = float64(cfg.Conns) / joined.Seconds()
	res.Figures["presence_frames_per_member_mean"] = float64(sum) / float64(len(frames))
	res.Figures["presence_frames_per_member_max"] = float64(frames[len(frames)-1])
	res.Figures["joins_seen_per_frame"] = float64(cfg.Conns) / max(1, float64(sum)/float64(len(frames)))
	if opts.Server == "" {
		// A member gets a frame at once in a quiet room and then at most one
		// per window: the joins do not multiply its frames.
		bound := int(settled/presenceWindow) + 2
		res.Figures["presence_frames_bound"] = float64(bound)
		if frames[len(frames)-1] > bound {
			res.fail("a member got %d presence frames in %v, more than one per %v window (%d)", frames[len(frames)-1], settled, presenceWindow, bound)
		}
	}

	if cfg.Churn > 0 {
		if err := churn(ctx, members, truth, cfg); err != nil {
			return nil, fmt.Errorf("churn: %w", err)
		}
	}
	// Converged: every member counts the room; the tracked ones know
	// nobody who left and every state right, and after reading the list
	// page by page they know exactly the room.
	if err := waitPresence(ctx, 2*time.Minute, func() bool { return converged(members, truth, false) == "" }); err != nil {
		res.fail("no convergence: %s", converged(members, truth, false))
		return res, nil
	}
	for _, m := range members {
		if m.track && m.isSubscribed() {
			if err := m.fetchMembers(ctx); err != nil {
				return nil, fmt.Errorf("members of %s: %w", m.clientID, err)
			}
		}
	}
	if bad := converged(members, truth, true); bad != "" {
		res.fail("after reading the member list: %s", bad)
	}
	inCountMode := 0
	for _, m := range members {
		m.mu.Lock()
		if m.subscribed && m.countMode {
			inCountMode++
		}
		m.mu.Unlock()
	}
	res.Figures["members_in_count_mode"] = float64(inCountMode)
	res.Seconds = time.Since(began).Seconds()
	return res, nil
}

// waitPresence polls cond until it holds, ctx ends, or timeout passes.
func waitPresence(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// roomTruth is who is in the room and their states, as the scenario made
// it (client id → state).
type roomTruth struct {
	mu      sync.Mutex
	members map[string]string
}

func newRoomTruth(members []*presenceMember) *roomTruth {
	t := &roomTruth{members: map[string]string{}}
	for _, m := range members {
		t.members[m.clientID] = "{}"
	}
	return t
}

func (t *roomTruth) snapshot() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.members)
}

// converged returns "" when every subscribed member's view agrees with the
// truth, or what differs: the count for all, and for tracked members no
// one unknown and every state right (exact with exact).
func converged(members []*presenceMember, truth *roomTruth, exact bool) string {
	want := truth.snapshot()
	for _, m := range members {
		if !m.isSubscribed() {
			continue
		}
		m.mu.Lock()
		count, known, err, countMode := m.count, maps.Clone(m.members), m.err, m.countMode
		m.mu.Unlock()
		if err != nil {
			return fmt.Sprintf("%s: %v", m.clientID, err)
		}
		if count != len(want) {
			return fmt.Sprintf("%s counts %d members, the room has %d", m.clientID, count, len(want))
		}
		if !m.track || countMode {
			continue
		}
		for id, st := range known {
			if w, ok := want[id]; !ok || w != st {
				return fmt.Sprintf("%s sees %s with state %s; the room has it: %v, state %s", m.clientID, id, st, ok, w)
			}
		}
		if exact && len(known) != len(want) {
			return fmt.Sprintf("%s knows %d members of %d after reading the list", m.clientID, len(known), len(want))
		}
	}
	return ""
}

// churn makes cfg.Churn random changes, from eight workers that each own
// a share of the members, and records them in truth once the server has
// them.
func churn(ctx context.Context, members []*presenceMember, truth *roomTruth, cfg PresenceConfig) error {
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			var mine []*presenceMember
			for i := w; i < len(members); i += workers {
				mine = append(mine, members[i])
			}
			for step := range cfg.Churn / workers {
				m := mine[rng.IntN(len(mine))]
				var err error
				switch {
				case !m.isSubscribed():
					if err = m.subscribe(ctx); err == nil {
						truth.mu.Lock()
						truth.members[m.clientID] = "{}"
						truth.mu.Unlock()
					}
				case rng.IntN(3) == 0:
					if err = m.unsubscribe(ctx); err == nil {
						truth.mu.Lock()
						delete(truth.members, m.clientID)
						truth.mu.Unlock()
					}
				default:
					state := fmt.Sprintf(`{"w":%d,"step":%d}`, w, step)
					if err = m.setState(ctx, state); err == nil {
						truth.mu.Lock()
						truth.members[m.clientID] = state
						truth.mu.Unlock()
					}
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", m.clientID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// presenceMember is one member speaking the protocol directly. A tracked
// member keeps the member list (from subscribed, batches and pages);
// another only counts presence frames and reads the member count.
type presenceMember struct {
	ws       *websocket.Conn
	channel  string
	clientID string
	track    bool
	frames   atomic.Int64 // presence frames received
	nextID   atomic.Int64

	wmu sync.Mutex // guards writes to ws

	mu         sync.Mutex // guards the fields below
	subscribed bool
	countMode  bool // the room switched to count mode: no member list
	count      int
	members    map[string]string // client id → state (tracked members)
	replies    map[int64]chan []byte
	err        error // the connection failed or a frame made no sense
}

// dialPresence connects a member and subscribes it.
func dialPresence(ctx context.Context, wsURL, token, user, channel string, track bool) (*presenceMember, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 8192, WriteBufferSize: 1024}
	ws, _, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		return nil, err
	}
	m := &presenceMember{ws: ws, channel: channel, track: track, members: map[string]string{}, replies: map[int64]chan []byte{}}
	go m.read()
	reply, err := m.request(ctx, map[string]any{"type": "connect", "token": token, "user": user})
	if err != nil {
		m.close()
		return nil, err
	}
	var c struct {
		Type     string `json:"type"`
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(reply, &c) != nil || c.Type != proto.TypeConnected {
		m.close()
		return nil, fmt.Errorf("connect: %s", reply)
	}
	m.clientID = c.ClientID
	if err := m.subscribe(ctx); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

func (m *presenceMember) close() { _ = m.ws.Close() }

func (m *presenceMember) isSubscribed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.subscribed
}

// request sends a frame with a fresh id and waits for the frame answering
// it (the reader applies it first).
func (m *presenceMember) request(ctx context.Context, v map[string]any) ([]byte, error) {
	id := m.nextID.Add(1)
	v["id"] = id
	ch := make(chan []byte, 1)
	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		return nil, err
	}
	m.replies[id] = ch
	m.mu.Unlock()
	b, _ := json.Marshal(v)
	m.wmu.Lock()
	err := m.ws.WriteMessage(websocket.TextMessage, b)
	m.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			m.mu.Lock()
			defer m.mu.Unlock()
			return nil, m.err
		}
		if bytes.Contains(r, []byte(`"type":"error"`)) {
			return nil, fmt.Errorf("%s", r)
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("no answer to %s in a minute", b)
	}
}

// subscribe subscribes with batched presence; the reader applies the
// subscribed frame.
func (m *presenceMember) subscribe(ctx context.Context) error {
	_, err := m.request(ctx, map[string]any{"type": "subscribe", "channel": m.channel, "presence_batch": true})
	return err
}

func (m *presenceMember) unsubscribe(ctx context.Context) error {
	if _, err := m.request(ctx, map[string]any{"type": "unsubscribe", "channel": m.channel}); err != nil {
		return err
	}
	m.mu.Lock()
	m.subscribed = false
	clear(m.members)
	m.mu.Unlock()
	return nil
}

// setState sets the presence state; the ping after it answers once the
// server has handled it (frames are handled in order; an error would come
// first).
func (m *presenceMember) setState(ctx context.Context, state string) error {
	b, _ := json.Marshal(map[string]any{"type": "presence", "channel": m.channel, "state": json.RawMessage(state)})
	m.wmu.Lock()
	err := m.ws.WriteMessage(websocket.TextMessage, b)
	m.wmu.Unlock()
	if err != nil {
		return err
	}
	_, err = m.request(ctx, map[string]any{"type": "ping"})
	return err
}

// fetchMembers reads the whole member list, a page at a time.
func (m *presenceMember) fetchMembers(ctx context.Context) error {
	after := ""
	for {
		r, err := m.request(ctx, map[string]any{"type": "members", "channel": m.channel, "after": after})
		if err != nil {
			return err
		}
		var f struct {
			Next string `json:"next"`
		}
		if err := json.Unmarshal(r, &f); err != nil {
			return err
		}
		if f.Next == "" {
			return nil
		}
		after = f.Next
	}
}

var (
	presencePrefix = []byte(`{"type":"presence"`)
	countKey       = []byte(`"count":`)
	modeEvent      = []byte(`"event":"mode"`)
)

// read is the member's reader: it applies what the server says, in order.
func (m *presenceMember) read() {
	defer func() {
		m.mu.Lock()
		if m.err == nil {
			m.err = errors.New("connection closed")
		}
		for id, ch := range m.replies {
			close(ch)
			delete(m.replies, id)
		}
		m.mu.Unlock()
	}()
	for {
		_, data, err := m.ws.ReadMessage()
		if err != nil {
			m.mu.Lock()
			m.err = err
			m.mu.Unlock()
			return
		}
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			if err := m.handle(line); err != nil {
				m.mu.Lock()
				m.err = err
				m.mu.Unlock()
				return
			}
		}
	}
}

// inFrame is what a tracked member decodes of a frame.
type inFrame struct {
	ID          *int64                `json:"id"`
	Type        string                `json:"type"`
	Event       string                `json:"event"`
	Member      *proto.Member         `json:"member"`
	Events      []proto.PresenceEvent `json:"events"`
	Members     []proto.Member        `json:"members"`
	Count       *int                  `json:"count"`
	Mode        string                `json:"mode"`
	MemberCount *int                  `json:"member_count"`
	MembersNext string                `json:"members_next"`
	After       string                `json:"after"`
	Next        string                `json:"next"`
}

func (m *presenceMember) handle(line []byte) error {
	if bytes.HasPrefix(line, presencePrefix) {
		m.frames.Add(1)
		if !m.track && !bytes.Contains(line, modeEvent) {
			// Only the count, which every batch carries after its events.
			i := bytes.LastIndex(line, countKey)
			if i < 0 {
				return nil
			}
			rest := line[i+len(countKey):]
			end := bytes.IndexAny(rest, ",}")
			if end < 0 {
				return fmt.Errorf("presence frame with a bad count: %.200s", line)
			}
			n, err := strconv.Atoi(string(rest[:end]))
			if err != nil {
				return fmt.Errorf("presence frame with a bad count: %.200s", line)
			}
			m.mu.Lock()
			m.count = n
			m.mu.Unlock()
			return nil
		}
	}
	if !m.track && !bytes.HasPrefix(line, []byte(`{"id":`)) && !bytes.Contains(line, modeEvent) {
		return nil // a message or a receipt: not counted
	}
	var f inFrame
	if err := json.Unmarshal(line, &f); err != nil {
		return fmt.Errorf("bad frame %.200q: %w", line, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch f.Type {
	case proto.TypeSubscribed:
		m.subscribed = true
		// A room in count mode answers with the count and no member.
		m.countMode = f.MemberCount != nil && len(f.Members) == 0
		clear(m.members)
		if m.track {
			for _, mb := range f.Members {
				m.members[mb.ClientID] = string(mb.State)
			}
		}
		m.count = len(f.Members)
		if f.MemberCount != nil {
			m.count = *f.MemberCount
		}
	case proto.TypeMembers:
		m.countMode = f.Mode == "count"
		for id := range m.members {
			if id > f.After && (f.Next == "" || id <= f.Next) {
				delete(m.members, id)
			}
		}
		for _, mb := range f.Members {
			m.members[mb.ClientID] = string(mb.State)
		}
		if f.Count != nil {
			m.count = *f.Count
		}
	case proto.TypePresence:
		switch f.Event {
		case "batch":
			for _, e := range f.Events {
				m.apply(e.Event, e.Member)
			}
		case "join", "update", "leave":
			m.apply(f.Event, *f.Member)
		case "count":
		case "mode":
			// Count mode keeps no list; back in full presence the list is
			// read anew (fetchMembers at the end).
			m.countMode = f.Mode == "count"
			clear(m.members)
		default:
			return fmt.Errorf("unexpected presence frame %.200s", line)
		}
		if f.Count != nil {
			m.count = *f.Count
		}
	}
	if f.ID != nil {
		if ch := m.replies[*f.ID]; ch != nil {
			delete(m.replies, *f.ID)
			ch <- slices.Clone(line)
		}
	}
	return nil
}

// apply applies one change to the member list. Must be called with m.mu
// held.
func (m *presenceMember) apply(event string, mb proto.Member) {
	if !m.subscribed || !m.track {
		return
	}
	if event == "leave" {
		delete(m.members, mb.ClientID)
		return
	}
	m.members[mb.ClientID] = string(mb.State)
}
