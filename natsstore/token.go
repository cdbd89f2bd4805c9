package natsstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxToken is the longest token encode returns; longer encodings are
// replaced by a hash.
const maxToken = 240

// encode turns a name (a document id, channel, user id, user name, comment
// id, namespace) into one token that is safe both as a NATS subject token
// and inside a key-value key: ASCII letters, digits, `_` and `-` stay as
// they are, every other byte becomes `=` and two upper-case hex digits (so
// `.`, `@`, `#`, `=`, `:` and each byte of a non-ASCII letter are escaped).
// The mapping is injective because `=` itself is escaped. An encoding
// longer than maxToken bytes is replaced by `=_` and the hex SHA-256 of the
// name, which no escaped name can equal (`=` is always followed by two hex
// digits there); the real name is kept in the records, never recovered
// from the token. The empty name (the default namespace) is `=`.
func encode(name string) string {
	if name == "" {
		return "="
	}
	var b strings.Builder
	b.Grow(len(name))
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('=')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
		if b.Len() > maxToken {
			sum := sha256.Sum256([]byte(name))
			return "=_" + hex.EncodeToString(sum[:])
		}
	}
	return b.String()
}

// decode reverses encode; ok is false for a hashed token (whose name is
// not recoverable) or one encode cannot have made.
func decode(tok string) (string, bool) {
	if tok == "=" {
		return "", true
	}
	if strings.HasPrefix(tok, "=_") {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		v, err := hex.DecodeString(tok[i+1 : i+3])
		if err != nil {
			return "", false
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), true
}
