package auth_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/auth"
)

func TestParseGrants(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want auth.Grants // nil with bad
		bad  string      // the entry named in the error
	}{
		{nil, auth.Grants{}, ""},
		{[]string{"read:doc:*"}, auth.Grants{{Action: "read", Pattern: "doc:*"}}, ""},
		{[]string{"admin:*", "publish:chat:a"}, auth.Grants{{Action: "admin", Pattern: "*"}, {Action: "publish", Pattern: "chat:a"}}, ""},
		{[]string{"subscribe:user:u1:x"}, auth.Grants{{Action: "subscribe", Pattern: "user:u1:x"}}, ""}, // the pattern keeps its colons
		{[]string{"fly:*"}, nil, "fly:*"},             // unknown action
		{[]string{"read"}, nil, "read"},               // no pattern
		{[]string{"read:"}, nil, "read:"},             // empty pattern
		{[]string{":doc:*"}, nil, ":doc:*"},           // empty action
		{[]string{"Read:doc:*"}, nil, "Read:doc:*"},   // actions are lower case
		{[]string{"read:a", "write"}, nil, "write"},   // the first bad one is named
		{[]string{""}, nil, ""},                       // empty entry
		{[]string{" read:doc:*"}, nil, " read:doc:*"}, // no trimming
	} {
		got, err := auth.ParseGrants(tc.in)
		if tc.want == nil {
			if !errors.Is(err, auth.ErrBadGrant) || !strings.Contains(err.Error(), `"`+tc.bad+`"`) {
				t.Errorf("ParseGrants(%q): %v, %v; want ErrBadGrant naming %q", tc.in, got, err, tc.bad)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseGrants(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if err == nil && !reflect.DeepEqual(got.Strings(), append([]string{}, tc.in...)) {
			t.Errorf("ParseGrants(%q).Strings() = %q", tc.in, got.Strings())
		}
	}
}

func TestGrantsAllows(t *testing.T) {
	gs := auth.Grants{
		{Action: "read", Pattern: "doc:*"},
		{Action: "write", Pattern: "doc:team-*"},
		{Action: "admin", Pattern: "dashboard:sales"},
		{Action: "subscribe", Pattern: "chat:*:public"},
	}
	for _, tc := range []struct {
		action, name string
		want         bool
	}{
		{"read", "doc:a", true},
		{"read", "doc:", true},               // `*` matches the empty run
		{"read", "docs:a", false},            // not a prefix match
		{"write", "doc:team-x", true},        // its own grant
		{"write", "doc:other", false},        // read does not imply write
		{"comment", "doc:team-x", false},     // write does not imply comment
		{"publish", "dashboard:sales", true}, // admin allows every action...
		{"presence", "dashboard:sales", true},
		{"admin", "dashboard:sales", true},
		{"publish", "dashboard:sales2", false}, // ...on what it matches only
		{"subscribe", "chat:a:b:public", true}, // `*` crosses colons
		{"subscribe", "chat:a:private", false},
		{"admin", "doc:a", false}, // read does not imply admin
		{"read", "", false},
	} {
		if got := gs.Allows(tc.action, tc.name); got != tc.want {
			t.Errorf("Allows(%s, %q) = %v, want %v", tc.action, tc.name, got, tc.want)
		}
	}
	if auth.Grants(nil).Allows("read", "doc:a") {
		t.Error("no grants allow something")
	}
	if !auth.All.Allows("publish", "anything:at:all") {
		t.Error("All does not allow everything")
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "a:b:c", true},
		{"**", "x", true},
		{"a", "a", true},
		{"a", "b", false},
		{"a", "aa", false},
		{"a*", "a", true},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbx", false},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acb", false},
		{"*:*", "chat:1", true},
		{"*:*", "chat", false},
		{"doc:team-*", "doc:team-", true},
		{"user:*:inbox", "user:u1:inbox", true},
		{"user:*:inbox", "user:u1:inbox:x", false},
		{"?", "a", false},   // only `*` is special
		{"[a]", "a", false}, // no classes
		{`\*`, "*", false},  // no escapes
		{"é*", "été", true}, // bytes of UTF-8 match themselves
		{"*aaa*", "aaaa", true},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false}, // the backtracking case, linear
	} {
		if got := auth.Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// matchRef is the reference for Match: the glob's definition, by memoized
// recursion over byte positions.
func matchRef(pattern, name string) bool {
	memo := map[[2]int]bool{}
	var m func(p, n int) bool
	m = func(p, n int) bool {
		key := [2]int{p, n}
		if v, ok := memo[key]; ok {
			return v
		}
		var v bool
		switch {
		case p == len(pattern):
			v = n == len(name)
		case pattern[p] == '*':
			v = m(p+1, n) || (n < len(name) && m(p, n+1)) // match nothing, or one more byte
		default:
			v = n < len(name) && pattern[p] == name[n] && m(p+1, n+1)
		}
		memo[key] = v
		return v
	}
	return m(0, 0)
}

// FuzzMatch compares Match with the reference on any pattern and name,
// and checks that a pattern matches every name built from it by replacing
// each star with any run.
func FuzzMatch(f *testing.F) {
	for _, s := range [][3]string{
		{"*", "", ""}, {"a*b", "axxb", "x"}, {"chat:*", "chat:1", ":"}, {"*a*a*b", "aaaa", "a"},
		{"user:*:inbox", "user:u:inbox", "*"}, {"**", "", "**"}, {"é*", "é\xff", "\x00"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pattern, name, fill string) {
		if len(pattern) > 64 || len(name) > 256 || len(fill) > 16 {
			return
		}
		if got, want := auth.Match(pattern, name), matchRef(pattern, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, name, got, want)
		}
		// The pattern with each star replaced by fill matches itself
		// through the pattern.
		if built := strings.ReplaceAll(pattern, "*", fill); !auth.Match(pattern, built) {
			t.Fatalf("Match(%q, %q) = false; the name is the pattern with each * as %q", pattern, built, fill)
		}
	})
}
