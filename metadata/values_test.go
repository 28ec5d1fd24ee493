package metadata_test

import (
	"slices"
	"testing"

	"github.com/pubsubkit/pubsub/metadata"
)

func TestValues(t *testing.T) {
	md := map[string]string{"tag": "a", "tag[1]": "b", "tag[2]": "c", "tag[4]": "lost", "one": "x", "other[1]": "y"}
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"tag", []string{"a", "b", "c"}}, // stops at the first missing index
		{"one", []string{"x"}},
		{"other", nil}, // no first value: no values
		{"missing", nil},
	} {
		if got := metadata.Values(md, c.key); !slices.Equal(got, c.want) {
			t.Errorf("Values(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

func TestSplitRepeatedKey(t *testing.T) {
	for _, c := range []struct {
		in  string
		key string
		n   int
		ok  bool
	}{
		{metadata.RepeatedKey("tag", 1), "tag", 1, true},
		{"x-trace[12]", "x-trace", 12, true},
		{"a[b][3]", "a[b]", 3, true},
		{"tag[0]", "", 0, false},
		{"tag[01]", "", 0, false},
		{"tag[]", "", 0, false},
		{"[1]", "", 0, false},
		{"tag[1", "", 0, false},
		{"tag1]", "", 0, false},
		{"tag[x]", "", 0, false},
		{"tag[1234567890]", "", 0, false},
	} {
		key, n, ok := metadata.SplitRepeatedKey(c.in)
		if key != c.key || n != c.n || ok != c.ok {
			t.Errorf("SplitRepeatedKey(%q) = %q, %d, %v; want %q, %d, %v", c.in, key, n, ok, c.key, c.n, c.ok)
		}
	}
}

func TestValidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                   "plain",
		"é and 日本":                "é and 日本",
		"bad bytes \xff\xfe here": "bad bytes \uFFFD here",
		"cut \xe6\x97":            "cut \uFFFD",
		"":                        "",
	} {
		if got := metadata.ValidUTF8(in); got != want {
			t.Errorf("ValidUTF8(%q) = %q, want %q", in, got, want)
		}
	}
}
