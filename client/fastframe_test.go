package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tandemhq/tandem/ot"
	"github.com/tandemhq/tandem/proto"
)

// decodeFast must agree with encoding/json on every frame it takes.
func TestDecodeFastAgrees(t *testing.T) {
	id := int64(7)
	frames := [][]byte{
		proto.Encode(proto.DocOp{Type: "op", Doc: "notes", Version: 42, Op: ot.Op{ot.Retain(5), ot.Insert("hé😀"), ot.Delete(3)},
			UID: "c_1-17", User: "u1", ClientID: "c_1", TS: "2026-11-26T18:00:00.123Z"}),
		proto.Encode(proto.DocOp{Type: "op", Doc: "d", Version: 0, Op: ot.Op{ot.Insert("x")}, UID: "srv-1", TS: "t"}),
		proto.Encode(proto.Ack{ID: &id, Type: "ack", Doc: "notes", Version: 9, UID: "g1-2"}),
	}
	for _, line := range frames {
		var fast, slow inbound
		if !decodeFast(line, &fast) {
			t.Errorf("decodeFast gave up on %s", line)
			continue
		}
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s:\nfast %+v\nslow %+v", line, fast, slow)
		}
	}
	for _, line := range []string{
		`{"type":"op","doc":"a\"b","version":1,"op":[1],"uid":"u","ts":"t"}`,   // escape
		`{"type":"op","doc":"d","version":1,"op":["a\nb"],"uid":"u","ts":"t"}`, // escape in the op
		`{"type":"op","doc":"d","version":-1,"op":[1],"uid":"u","ts":"t"}`,     // negative
		`{"type":"op","doc":"d","version":1,"extra":1,"op":[1],"uid":"u"}`,     // unknown key
		`{"id":1,"type":"snapshot","doc":"d","version":1}`,                     // another type
		`{"type":"op","doc":"d","version":1,"op":[1],"uid":"u","ts":"t"} `,     // trailing space
		`{"type":"message","channel":"c"}`,
	} {
		var f inbound
		if decodeFast([]byte(line), &f) {
			t.Errorf("decodeFast took %s", line)
		}
	}
}

func FuzzDecodeFastAgrees(f *testing.F) {
	f.Add([]byte(`{"type":"op","doc":"d","version":3,"op":[2,"x",-1],"uid":"u","user":"a","client_id":"c","ts":"t"}`))
	f.Add([]byte(`{"id":4,"type":"ack","doc":"d","version":9,"uid":"g"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast, slow inbound
		if !decodeFast(line, &fast) {
			return
		}
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("decodeFast took %q, encoding/json says %v", line, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, slow %+v", line, fast, slow)
		}
	})
}
