package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// serverFrames are frames as the server encodes them (proto.Encode), one of
// every type the client reads.
func serverFrames() [][]byte {
	id := int64(7)
	n := 3
	member := proto.Member{ClientID: "c_1", User: proto.User{ID: "u1", Name: "Ann", Color: proto.ColorOf("u1")}, State: json.RawMessage(`{"typing":true}`)}
	comment := proto.Comment{ID: "cm_1", Range: ot.Range{From: 1, To: 3}, User: member.User, Text: "look <here> & \"there\"", CreatedAt: "2026-11-26T18:00:00.123Z"}
	cursor := proto.Cursor{Doc: "notes", Version: 4, ClientID: "c_1", User: &member.User, Ranges: []ot.Selection{{Anchor: 1, Head: 2}}}
	return [][]byte{
		proto.Encode(proto.Connected{ID: &id, Type: proto.TypeConnected, ClientID: "c_9", User: member.User, PingInterval: 25, Server: "tandem",
			Limits: &proto.Limits{MaxFrameBytes: 65536, MaxOpBytes: 65536, MaxDocLen: 4000000}}),
		proto.Encode(proto.Reply{ID: &id, Type: proto.TypePong}),
		proto.Encode(proto.Error{ID: &id, Type: proto.TypeError, Code: proto.CodeForbidden, Message: "no", Channel: "chat:x"}),
		proto.Encode(proto.Subscribed{ID: &id, Type: proto.TypeSubscribed, Channel: "chat:x", Offset: 9, Epoch: "e1", Recovered: true,
			Messages: []proto.Message{{Channel: "chat:x", Offset: 9, Event: "m", Data: json.RawMessage(`{"a":1}`), From: &proto.From{User: "u1"}, TS: "t"}},
			Members:  []proto.Member{member}, MemberCount: &n, Receipts: map[string]uint64{"u1": 8}, MembersNext: "c_1"}),
		proto.Encode(proto.ChannelReply{ID: &id, Type: proto.TypePublished, Channel: "chat:x", Offset: 10}),
		proto.Encode(proto.ChannelReply{Type: proto.TypeRetracted, Channel: "chat:x", Offset: 10, By: "u1"}),
		proto.Encode(proto.Message{Type: proto.TypeMessage, Channel: "chat:x", Offset: 11, Event: "m", Data: json.RawMessage(`"hi"`), From: &proto.From{User: "u1", ClientID: "c_1"}, TS: "t"}),
		proto.Encode(proto.Receipt{Type: proto.TypeReceipt, Channel: "chat:x", User: "u1", Offset: 11, TS: "t"}),
		proto.Encode(proto.Members{ID: &id, Type: proto.TypeMembers, Channel: "chat:x", After: "c_0", Members: []proto.Member{member}, Count: 3, Next: "c_1"}),
		proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "chat:x", Event: "batch", Events: []proto.PresenceEvent{{Event: "join", Member: member}}, Count: &n}),
		proto.Encode(proto.Presence{Type: proto.TypePresence, Channel: "doc:notes", Doc: "notes", Event: "leave", Member: &member}),
		proto.Encode(&proto.Snapshot{ID: &id, Type: proto.TypeSnapshot, Doc: "notes", Version: 4, Epoch: "e", Content: "héllo\n", Comments: []proto.Comment{comment},
			Members: []proto.Member{member}, Cursors: []proto.Cursor{cursor}}),
		proto.Encode(&proto.Opened{ID: &id, Type: proto.TypeOpened, Doc: "notes", Version: 5, Epoch: "e",
			Ops: []proto.DocOp{{Doc: "notes", Version: 4, Op: ot.Op{ot.Insert("x")}, UID: "u-1", TS: "t"}}}),
		proto.Encode(proto.DocOp{Type: proto.TypeOp, Doc: "notes", Version: 42, Op: ot.Op{ot.Retain(5), ot.Insert("hé😀"), ot.Delete(3)},
			UID: "c_1-17", User: "u1", ClientID: "c_1", TS: "2026-11-26T18:00:00.123Z"}),
		proto.Encode(proto.DocOp{Type: proto.TypeOp, Doc: "d", Version: 0, Op: ot.Op{ot.Insert("x")}, UID: "srv-1", TS: "t"}),
		proto.Encode(proto.Ack{ID: &id, Type: proto.TypeAck, Doc: "notes", Version: 9, UID: "g1-2"}),
		proto.Encode(proto.CommentFrame{ID: &id, Type: proto.TypeComment, Doc: "notes", Action: "add", Comment: comment}),
		proto.Encode(proto.Cursor{Type: proto.TypeCursor, Doc: cursor.Doc, Version: cursor.Version, ClientID: cursor.ClientID, User: cursor.User, Ranges: cursor.Ranges}),
		proto.Encode(proto.Closed{Type: proto.TypeClosed, Doc: "notes", Reason: "deleted"}),
	}
}

// TestDecodeFrame: every frame the server writes decodes into its proto
// type, field for field (a JSON tag that differed between the server's
// encoding and the client's decoding would lose a field here), with the
// same result as encoding/json alone; ops and acks take the fast path.
func TestDecodeFrame(t *testing.T) {
	for _, line := range serverFrames() {
		f, err := decodeFrame(line)
		if err != nil {
			t.Fatalf("decodeFrame(%s): %v", line, err)
		}
		if f.body == nil {
			t.Fatalf("decodeFrame(%s): type %q has no proto type", line, f.Type)
		}
		if back := proto.Encode(f.body); string(back) != string(line) {
			t.Errorf("decoded and encoded again:\n got %s\nwant %s", back, line)
		}
		slow, err := decodeSlow(line)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f, slow) {
			t.Errorf("%s:\nfast %+v\nslow %+v", line, f.body, slow.body)
		}
		if _, fast := decodeFast(line); fast != (f.Type == proto.TypeOp || f.Type == proto.TypeAck) {
			t.Errorf("decodeFast took %s: %v", line, fast)
		}
		if _, ok := peekType(line); !ok {
			t.Errorf("peekType did not see the type of %s", line)
		}
	}
}

// TestDecodeFrameOddities: lines no server writes (keys in another order,
// a repeated or differently cased type, escapes, unknown keys and types)
// decode as encoding/json decodes them, and so does decodeFast when it
// takes them.
func TestDecodeFrameOddities(t *testing.T) {
	for _, line := range []string{
		`{"type":"op","doc":"a\"b","version":1,"op":[1],"uid":"u","ts":"t"}`,   // escape
		`{"type":"op","doc":"d","version":1,"op":["a\nb"],"uid":"u","ts":"t"}`, // escape in the op
		`{"type":"op","doc":"d","version":-1,"op":[1],"uid":"u","ts":"t"}`,     // negative
		`{"type":"op","doc":"d","version":1,"extra":1,"op":[1],"uid":"u"}`,     // unknown key
		`{"type":"op","id":3,"doc":"d","version":1,"op":[1],"uid":"u"}`,        // an id, which op frames have not
		`{"id":1,"type":"ack","doc":"d","version":1,"ts":"t"}`,                 // a key acks have not
		`{"type":"op","doc":"d","version":1,"op":[1],"uid":"u","ts":"t"} `,     // trailing space
		`{"doc":"d","type":"op","version":1,"op":[1],"uid":"u"}`,               // type not first
		`{"type":"op","doc":"d","version":1,"op":[1],"type":"ack"}`,            // repeated type
		`{"type":"message","channel":"c","Type":"ack","version":2}`,            // type in another case
		`{"type":"whatever","id":5}`,                                           // unknown type
		`{"id":5,"type":"nonsense","type":"pong"}`,                             // unknown, then known
		`{"id":1,"type":"snapshot","doc":"d","version":1}`,                     // another type
		`{"type":"message","channel":"c"}`,
	} {
		got, gerr := decodeFrame([]byte(line))
		want, werr := decodeSlow([]byte(line))
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ndecodeFrame %+v, %v\ndecodeSlow %+v, %v", line, got, gerr, want, werr)
		}
		if fast, ok := decodeFast([]byte(line)); ok && !reflect.DeepEqual(fast, want) {
			t.Errorf("%s: decodeFast %+v, encoding/json %+v", line, fast.body, want.body)
		}
	}
}

// FuzzDecodeFrame: decodeFrame, with its look at the type and its fast
// path, agrees with encoding/json on proto's types (decodeSlow) on any
// input, and whatever decodeFast takes encoding/json takes alike.
func FuzzDecodeFrame(f *testing.F) {
	for _, line := range serverFrames() {
		f.Add(line)
	}
	f.Add([]byte(`{"type":"op","doc":"d","version":3,"op":[2,"x",-1],"uid":"u","user":"a","client_id":"c","ts":"t"}`))
	f.Add([]byte(`{"id":4,"type":"ack","doc":"d","version":9,"uid":"g"}`))
	f.Add([]byte(`{"type":"op","doc":"d","version":1,"op":[1],"type":"ack"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		got, gerr := decodeFrame(line)
		want, werr := decodeSlow(line)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: decodeFrame says %v, encoding/json %v", line, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\ndecodeFrame %+v %+v\ndecodeSlow  %+v %+v", line, got, got.body, want, want.body)
		}
		if fast, ok := decodeFast(line); ok && !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: decodeFast %+v, encoding/json %+v", line, fast.body, want.body)
		}
	})
}

// TestOutboundFrames: the frames the client builds itself rather than
// from proto.Request (an op keeps an empty op, a cursor empty ranges) are
// read by the server, which decodes proto.Request, field for field.
func TestOutboundFrames(t *testing.T) {
	id := int64(3)
	op := ot.Op{ot.Retain(2), ot.Insert("<é>"), ot.Delete(1)}
	var got proto.Request
	if err := json.Unmarshal(encodeOpFrame(opRequest{ID: &id, Type: proto.TypeOp, Doc: "notes", Version: 7, Op: op, UID: "g1-4"}), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID == nil || *got.ID != id || got.Type != proto.TypeOp || got.Doc != "notes" || got.Version == nil || *got.Version != 7 ||
		!reflect.DeepEqual(got.Op, op) || got.UID != "g1-4" {
		t.Errorf("op frame read by the server as %+v", got)
	}
	got = proto.Request{}
	ranges := []ot.Selection{{Anchor: 1, Head: 4}}
	if err := json.Unmarshal(mustEncode(cursorRequest{Type: proto.TypeCursor, Doc: "notes", Version: 7, Ranges: ranges}), &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != proto.TypeCursor || got.Doc != "notes" || got.Version == nil || *got.Version != 7 || !reflect.DeepEqual(got.Ranges, ranges) {
		t.Errorf("cursor frame read by the server as %+v", got)
	}
}
