package wasmhost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// TestParseSerialized covers what the host adds to proxywasm.PairIter: a map
// shorter than its count is malformed, keys are lower-cased, an error leaves
// the map empty, and a parsed map encodes back to the same bytes.
func TestParseSerialized(t *testing.T) {
	good := proxywasm.AppendPairs(nil, "a", "1", "b", "")
	tests := []struct {
		name string
		data []byte
		want error
		n    int
	}{
		{"ok", good, nil, 2},
		{"empty map", []byte{0, 0, 0, 0}, nil, 0},
		{"empty buffer", nil, proxywasm.ErrMapFormat, 0},
		{"short", []byte{1, 0}, proxywasm.ErrMapFormat, 0},
		{"truncated", good[:len(good)-1], proxywasm.ErrMapFormat, 0},
		{"too many pairs", binary.LittleEndian.AppendUint32(nil, proxywasm.MaxMapPairs+1), proxywasm.ErrMapLimit, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m HeaderMap
			_ = m.Add("stale", "x")
			err := m.ParseSerialized(tt.data)
			if !errors.Is(err, tt.want) || m.Len() != tt.n {
				t.Fatalf("ParseSerialized = %v with %d pairs, want %v with %d", err, m.Len(), tt.want, tt.n)
			}
			if err == nil && (!bytes.Equal(m.AppendSerialized(nil), tt.data) || m.SerializedSize() != len(tt.data)) {
				t.Fatal("round trip changed the bytes")
			}
		})
	}
	var m HeaderMap
	if err := m.ParseSerialized(proxywasm.AppendPairs(nil, "Set-Cookie", "a=1")); err != nil {
		t.Fatal(err)
	}
	if k, _ := m.Pair(0); string(k) != "set-cookie" {
		t.Fatalf("key %q not lower-cased", k)
	}
}

func TestHeaderMapOps(t *testing.T) {
	var m HeaderMap
	_ = m.Add("Set-Cookie", "a=1")
	_ = m.Add("x", "1")
	_ = m.Add("set-cookie", "b=2")
	if got := m.Values("SET-COOKIE"); len(got) != 2 {
		t.Fatalf("values = %q", got)
	}
	_ = m.Set("set-cookie", "c=3")
	if got := m.Values("set-cookie"); len(got) != 1 || got[0] != "c=3" || m.Len() != 2 {
		t.Fatalf("after Set: %q, %d pairs", got, m.Len())
	}
	m.Del("x")
	if _, ok := m.Get("x"); ok || m.Len() != 1 {
		t.Fatal("Del left the key")
	}
	m.Reset()
	allocs := testing.AllocsPerRun(100, func() {
		m.Reset()
		_ = m.Add("cookie", "a=1")
		_ = m.Add("x-session-id", "abc")
		_ = m.Set("x-session-id", "def")
		m.Del("cookie")
	})
	if allocs != 0 {
		t.Errorf("a warm HeaderMap allocates %.1f times per use, want 0", allocs)
	}
}
