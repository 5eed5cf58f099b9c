package pebble

import (
	"bytes"
	"testing"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"u", "v"},
		{"u\x03abc", "u\x03abd"},
		{"u\x01\xff", "u\x02"},
		{"u\xfe\xff\xff", "u\xff"},
		{"\x00", "\x01"},
		{"\xff", ""},
		{"\xff\xff\xff", ""},
		{"", ""},
	} {
		got := prefixEnd([]byte(tc.in))
		if tc.want == "" && got != nil || tc.want != "" && string(got) != tc.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// Every key that starts with the prefix sorts below the bound.
		for _, tail := range []string{"", "\x00", "\xff", "\xff\xff\xff\xff"} {
			k := []byte(tc.in + tail)
			if got != nil && bytes.Compare(k, got) >= 0 {
				t.Errorf("key %q is not below prefixEnd(%q) = %q", k, tc.in, got)
			}
		}
	}
}
