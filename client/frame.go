package client

import (
	"bytes"
	"encoding/json"

	"github.com/tandemhq/tandem/internal/jsonscan"
	"github.com/tandemhq/tandem/proto"
)

// inbound is one server frame: its type, its id, and the frame itself
// decoded into the proto type that its type names (body). The server
// builds every frame from those types, so the client reads exactly the
// records the server writes; no field is declared twice.
type inbound struct {
	Type string
	// ID is the frame's id: set on a reply, nil on a push and on the
	// frame types that carry none (message, op, presence, cursor).
	ID *int64
	// body is a pointer to the frame's proto type (*proto.Connected,
	// *proto.DocOp, ...), or nil for a type this client does not know.
	body any
}

// newBody returns a new value of the proto type that describes the server
// frames of type typ, or nil for a type the client does not know.
func newBody(typ string) any {
	switch typ {
	case proto.TypeConnected:
		return new(proto.Connected)
	case proto.TypeRefreshed, proto.TypePong:
		return new(proto.Reply)
	case proto.TypeError:
		return new(proto.Error)
	case proto.TypeSubscribed:
		return new(proto.Subscribed)
	case proto.TypeUnsubscribed, proto.TypePublished, proto.TypeRetracted:
		return new(proto.ChannelReply)
	case proto.TypeMessage:
		return new(proto.Message)
	case proto.TypeReceipt:
		return new(proto.Receipt)
	case proto.TypeMembers:
		return new(proto.Members)
	case proto.TypePresence:
		return new(proto.Presence)
	case proto.TypeSnapshot:
		return new(proto.Snapshot)
	case proto.TypeOpened:
		return new(proto.Opened)
	case proto.TypeOp:
		return new(proto.DocOp)
	case proto.TypeAck:
		return new(proto.Ack)
	case proto.TypeComment:
		return new(proto.CommentFrame)
	case proto.TypeCursor:
		return new(proto.Cursor)
	case proto.TypeClosed:
		return new(proto.Closed)
	case proto.TypeRPCResult:
		return new(proto.RPCResult)
	}
	return nil
}

// headOf returns the id and the type of a body made by newBody.
func headOf(body any) (*int64, string) {
	switch b := body.(type) {
	case *proto.Connected:
		return b.ID, b.Type
	case *proto.Reply:
		return b.ID, b.Type
	case *proto.Error:
		return b.ID, b.Type
	case *proto.Subscribed:
		return b.ID, b.Type
	case *proto.ChannelReply:
		return b.ID, b.Type
	case *proto.Message:
		return nil, b.Type
	case *proto.Receipt:
		return b.ID, b.Type
	case *proto.Members:
		return b.ID, b.Type
	case *proto.Presence:
		return nil, b.Type
	case *proto.Snapshot:
		return b.ID, b.Type
	case *proto.Opened:
		return b.ID, b.Type
	case *proto.DocOp:
		return nil, b.Type
	case *proto.Ack:
		return b.ID, b.Type
	case *proto.CommentFrame:
		return b.ID, b.Type
	case *proto.Cursor:
		return nil, b.Type
	case *proto.Closed:
		return b.ID, b.Type
	case *proto.RPCResult:
		return b.ID, b.Type
	}
	panic("client: headOf: not a frame body") // newBody and headOf disagree
}

// docOf returns the document a frame is about, or "" for a frame about
// none (an error frame's doc is not its subject: errors are routed as
// errors).
func docOf(body any) string {
	switch b := body.(type) {
	case *proto.DocOp:
		return b.Doc
	case *proto.Ack:
		return b.Doc
	case *proto.Snapshot:
		return b.Doc
	case *proto.Opened:
		return b.Doc
	case *proto.CommentFrame:
		return b.Doc
	case *proto.Cursor:
		return b.Doc
	case *proto.Closed:
		return b.Doc
	case *proto.Presence:
		return b.Doc
	}
	return ""
}

// asError returns the error frame f holds as an *Error, or nil when f is
// not an error frame.
func (f *inbound) asError() *Error {
	e, ok := f.body.(*proto.Error)
	if !ok {
		return nil
	}
	return &Error{Code: e.Code, Message: e.Message, Channel: e.Channel, Doc: e.Doc}
}

// header is what a frame of an unknown type is read as.
type header struct {
	ID   *int64 `json:"id"`
	Type string `json:"type"`
}

// typeOf reads a frame's type with encoding/json: what classifies a frame
// whose type the cheap look (peekType) cannot see.
func typeOf(line []byte) (string, error) {
	var h struct {
		Type string `json:"type"`
	}
	err := json.Unmarshal(line, &h)
	return h.Type, err
}

// decodeFrame decodes one server frame, a line of a server message. The
// frames every editor receives most (a remote op, an ack) take a path
// without reflection (decodeFast); every other frame is decoded with
// encoding/json into its proto type, found by a look at the start of the
// line, which is where the server writes the id and the type. Whatever
// path it takes, the result is the one decodeSlow gives: encoding/json's.
func decodeFrame(line []byte) (*inbound, error) {
	typ, ok := peekType(line)
	if !ok {
		var err error
		if typ, err = typeOf(line); err != nil {
			return nil, err
		}
	}
	if typ == proto.TypeOp || typ == proto.TypeAck {
		if f, ok := decodeFast(line); ok {
			return f, nil
		}
	}
	// The look takes the first "type" key; were there another (never from
	// a server), encoding/json's rules give the frame another type, and
	// the decode goes round once more with that one. A decode that fails
	// may have stopped before the last "type" key: decodeSlow then says
	// what the frame is and what is wrong with it.
	for range 2 {
		body := newBody(typ)
		if body == nil {
			// A type this client does not know: keep its id, so that the
			// request it answers (if any) gets its answer.
			var h header
			if err := json.Unmarshal(line, &h); err != nil {
				return decodeSlow(line)
			}
			if h.Type != typ {
				typ = h.Type
				continue
			}
			return &inbound{Type: typ, ID: h.ID}, nil
		}
		if err := json.Unmarshal(line, body); err != nil {
			return decodeSlow(line)
		}
		id, t := headOf(body)
		if t != typ {
			typ = t
			continue
		}
		return &inbound{Type: typ, ID: id, body: body}, nil
	}
	return decodeSlow(line) // unreachable: the second round has JSON's type
}

// decodeSlow is what decodeFrame computes, by encoding/json alone: the
// type as encoding/json reads it, then the frame as its proto type. The
// fuzz test holds decodeFrame to it.
func decodeSlow(line []byte) (*inbound, error) {
	typ, err := typeOf(line)
	if err != nil {
		return nil, err
	}
	body := newBody(typ)
	if body == nil {
		var h header
		if err := json.Unmarshal(line, &h); err != nil {
			return nil, err
		}
		return &inbound{Type: typ, ID: h.ID}, nil
	}
	if err := json.Unmarshal(line, body); err != nil {
		return nil, err
	}
	id, _ := headOf(body)
	return &inbound{Type: typ, ID: id, body: body}, nil
}

// peekType reads the frame type at the start of a line as the server
// writes it, `{"type":"..."` or `{"id":N,"type":"..."`, without decoding
// the rest. It reports false for any other start.
func peekType(line []byte) (string, bool) {
	b, ok := bytes.CutPrefix(line, []byte(`{`))
	if !ok {
		return "", false
	}
	if rest, ok := bytes.CutPrefix(b, []byte(`"id":`)); ok {
		_, n, ok := jsonscan.Int(rest, 0)
		if !ok || n >= len(rest) || rest[n] != ',' {
			return "", false
		}
		b = rest[n+1:]
	}
	b, ok = bytes.CutPrefix(b, []byte(`"type":`))
	if !ok {
		return "", false
	}
	s, _, ok := jsonscan.String(b, 0)
	return s, ok
}
