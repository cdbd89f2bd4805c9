package jsonscan

import "testing"

// TestScan: what each reader takes and where it ends, and what it leaves
// to encoding/json.
func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // String's value, or "" for none
		end  int    // StringEnd's end; 0 when refused
	}{
		{`"abc",`, "abc", 5},
		{`"",`, "", 2},
		{`"a\"b"`, "", 0},
		{"\"a\x01\"", "", 0},
		{"\"a\xffb\"", "", 0},
		{`"open`, "", 0},
		{`abc`, "", 0},
	} {
		s, end, ok := String([]byte(tc.in), 0)
		if ok != (tc.end > 0) || s != tc.want || end != tc.end {
			t.Errorf("String(%q) = %q, %d, %v; want %q, %d", tc.in, s, end, ok, tc.want, tc.end)
		}
	}
	for _, tc := range []struct {
		in  string
		n   int64
		end int // 0 when refused
	}{
		{`0,`, 0, 1}, {`-12]`, -12, 3}, {`9223372036854775807`, 9223372036854775807, 19},
		{`01`, 0, 0}, {`-`, 0, 0}, {`1.5`, 0, 0}, {`1e3`, 0, 0}, {`9223372036854775808`, 0, 0},
	} {
		n, end, ok := Int([]byte(tc.in), 0)
		if ok != (tc.end > 0) || n != tc.n || end != tc.end {
			t.Errorf("Int(%q) = %d, %d, %v; want %d, %d", tc.in, n, end, ok, tc.n, tc.end)
		}
	}
	for _, tc := range []struct {
		in  string
		end int // 0 when refused
	}{
		{`[],`, 2}, {`[ 3 , "ab" ,-2 ]x`, 16}, {`[1,]`, 0}, {`[[1]]`, 0}, {`[1.5]`, 0}, {`["a\"b"]`, 0}, {`[1`, 0}, {`{}`, 0},
	} {
		end, ok := FlatArrayEnd([]byte(tc.in), 0)
		if ok != (tc.end > 0) || end != tc.end {
			t.Errorf("FlatArrayEnd(%q) = %d, %v; want %d", tc.in, end, ok, tc.end)
		}
	}
}
