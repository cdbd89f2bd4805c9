package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/proto"
)

// MaxMentions is how many distinct @names of one message or comment notify
// anyone: the first MaxMentions, in the order they appear; the others are
// ignored. Each costs user lookups and a stored message on user:<id>.
const MaxMentions = 20

// Mentions returns the distinct @names in text, at most MaxMentions, in the
// order they first appear: `@` followed by letters, digits and `_.-`, at
// the start or after a character that is not part of a name.
func Mentions(text string) []string {
	var out []string
	isName := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-", r) }
	prev := ' '
	for i, r := range text {
		if r == '@' && !isName(prev) {
			rest := text[i+1:]
			end := strings.IndexFunc(rest, func(r rune) bool { return !isName(r) })
			if end < 0 {
				end = len(rest)
			}
			name := strings.TrimRight(rest[:end], ".-") // a sentence's full stop is not part of it
			if name != "" && !slices.Contains(out, name) {
				out = append(out, name)
				if len(out) == MaxMentions {
					break
				}
			}
		}
		prev = r
	}
	return out
}

// mentionJob is one message's or comment's mentions, waiting for a worker.
// A channel message carries its data, parsed by the worker; a comment its
// names, parsed by the document already.
type mentionJob struct {
	names    []string
	data     json.RawMessage
	channel  string
	offset   uint64
	fromUser string
	fromName string
	text     string
}

// mentionPool resolves mentions off the callers' goroutines (the committer
// for channel messages, a document's goroutine for comments): a bounded
// queue that never blocks a caller, and HubConfig.MentionWorkers workers.
type mentionPool struct {
	h     *Hub
	queue chan mentionJob

	dropped  prometheus.Counter
	done     atomic.Uint64 // jobs resolved
	drops    atomic.Uint64 // jobs dropped on a full queue
	lastWarn atomic.Int64  // Unix nanoseconds of the last drop warning
}

func newMentionPool(h *Hub) *mentionPool {
	p := &mentionPool{h: h, queue: make(chan mentionJob, h.cfg.MentionQueue)}
	p.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tandem_mentions_dropped_total",
		Help: "Messages and comments whose @mentions were dropped because the mention queue was full."})
	if err := h.cfg.Metrics.Registry.Register(p.dropped); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			p.dropped = are.ExistingCollector.(prometheus.Counter)
		}
	}
	return p
}

// enqueue queues j without blocking; on a full queue it drops j, counts it,
// and warns at most every ten seconds.
func (p *mentionPool) enqueue(j mentionJob) {
	select {
	case <-p.h.stop:
		return
	default:
	}
	select {
	case p.queue <- j:
		return
	default:
	}
	p.drops.Add(1)
	p.dropped.Inc()
	now := time.Now().UnixNano()
	if last := p.lastWarn.Load(); now-last > int64(10*time.Second) && p.lastWarn.CompareAndSwap(last, now) {
		p.h.log.Warn().Str("channel", j.channel).Uint64("dropped_total", p.drops.Load()).
			Msg("mention queue full: mentions dropped")
	}
}

// queueMessage queues the mentions of a durable channel message, if its
// data.text may have any; the worker parses it.
func (p *mentionPool) queueMessage(m doc.Message, fromName string) {
	if !bytes.Contains(m.Data, []byte("@")) {
		return
	}
	p.enqueue(mentionJob{data: m.Data, channel: m.Channel, offset: m.Offset, fromUser: m.User, fromName: fromName})
}

// work is a worker goroutine.
func (p *mentionPool) work() {
	defer p.h.wg.Done()
	for {
		select {
		case <-p.h.stop:
			return
		case j := <-p.queue:
			p.resolve(j)
			p.done.Add(1)
		}
	}
}

// resolve publishes a "mention" on user:<id> for each of the job's names
// that is a known user's id or name, except the author.
func (p *mentionPool) resolve(j mentionJob) {
	h := p.h
	if j.data != nil {
		var body struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(j.data, &body) != nil {
			return
		}
		j.text, j.names = body.Text, Mentions(body.Text)
	}
	text := clip(j.text, maxMentionText)
	seen := map[string]bool{j.fromUser: true}
	for _, name := range j.names {
		select {
		case <-h.stop:
			return
		default:
		}
		u, ok, err := h.cfg.Users.GetUser(name)
		if err == nil && !ok {
			u, ok, err = h.cfg.Users.UserByName(name)
		}
		if err != nil {
			h.log.Error().Err(err).Msg("mention lookup")
			continue
		}
		if !ok || seen[u.ID] {
			continue
		}
		seen[u.ID] = true
		notify(h.cfg.Notifier, Event{Type: EventMention, Time: h.now(), Channel: j.channel, User: u.ID,
			Data: map[string]any{"offset": j.offset, "text": text, "from": j.fromUser}})
		data, _ := json.Marshal(map[string]any{
			"channel": j.channel, "offset": j.offset, "text": text,
			"from": map[string]string{"id": j.fromUser, "name": j.fromName},
		})
		h.Publish(Publication{Channel: "user:" + u.ID, Event: "mention", Data: data, From: proto.From{User: j.fromUser}},
			func(_ uint64, err error) {
				if err != nil && !errors.Is(err, ErrClosed) {
					h.log.Error().Err(err).Str("user", u.ID).Msg("mention notification")
				}
			})
	}
}

// NotifyMentions publishes a "mention" event on user:<id> for each of names
// that is a known user's id or name, except the author: at most the first
// MaxMentions distinct names. It never blocks: the lookups and publishes
// run on the hub's mention workers, and when their queue is full the
// mentions are dropped (counted in tandem_mentions_dropped_total, and
// logged). Documents' comments use it too, from the document's goroutine
// (channel is then doc:<id>).
func (h *Hub) NotifyMentions(names []string, channel string, offset uint64, fromUser, fromName, text string) {
	distinct := make([]string, 0, min(len(names), MaxMentions))
	for _, n := range names {
		if len(distinct) == MaxMentions {
			break
		}
		if !slices.Contains(distinct, n) {
			distinct = append(distinct, n)
		}
	}
	if len(distinct) == 0 {
		return
	}
	h.mentions.enqueue(mentionJob{names: distinct, channel: channel, offset: offset, fromUser: fromUser, fromName: fromName,
		text: clip(text, maxMentionText)})
}

// maxMentionText is how much of the text a mention notification quotes, in
// bytes.
const maxMentionText = 280

// clip returns the longest prefix of s of at most n bytes that does not cut
// a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// MentionStats reports how many messages' and comments' mentions the
// workers resolved and how many were dropped on a full queue.
func (h *Hub) MentionStats() (resolved, dropped uint64) {
	return h.mentions.done.Load(), h.mentions.drops.Load()
}
