package wasmhost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseSerialized(t *testing.T) {
	good := serialize("a", "1", "b", "")
	tests := []struct {
		name string
		data []byte
		want error
		n    int
	}{
		{"ok", good, nil, 2},
		{"empty map", []byte{0, 0, 0, 0}, nil, 0},
		{"short", []byte{1, 0}, ErrHeaderMapFormat, 0},
		{"count beyond lengths", []byte{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, ErrHeaderMapFormat, 0},
		{"missing key NUL", append(append([]byte(nil), good[:len(good)-4]...), 'x', '1', 0, 0), ErrHeaderMapFormat, 0},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrHeaderMapFormat, 0},
		{"truncated", good[:len(good)-1], ErrHeaderMapFormat, 0},
		{"too many pairs", binary.LittleEndian.AppendUint32(nil, MaxHeaderPairs+1), ErrHeaderMapLimit, 0},
		{"too large", make([]byte, MaxHeaderBytes+1), ErrHeaderMapLimit, 0},
		{"huge length", append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1), 0xFFFFFFFF), 0), 0, 0), ErrHeaderMapFormat, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m HeaderMap
			err := m.ParseSerialized(tt.data)
			if !errors.Is(err, tt.want) || m.Len() != tt.n {
				t.Fatalf("ParseSerialized = %v with %d pairs, want %v with %d", err, m.Len(), tt.want, tt.n)
			}
			if err == nil && !bytes.Equal(m.AppendSerialized(nil), tt.data) {
				t.Fatal("round trip changed the bytes")
			}
		})
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

func FuzzParseSerialized(f *testing.F) {
	f.Add(serialize("a", "1", "cookie", "x=y"))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m HeaderMap
		if err := m.ParseSerialized(data); err != nil {
			if m.Len() != 0 {
				t.Fatal("error left pairs behind")
			}
			return
		}
		if len(m.AppendSerialized(nil)) != len(data) || !bytes.Equal(m.AppendSerialized(nil), lowerKeys(data)) {
			t.Fatalf("round trip differs")
		}
	})
}

// lowerKeys returns data with the keys of the serialized map lower-cased, as
// the map stores them.
func lowerKeys(data []byte) []byte {
	var m HeaderMap
	_ = m.ParseSerialized(data)
	out := binary.LittleEndian.AppendUint32(nil, uint32(m.Len()))
	n := m.Len()
	for i := 0; i < n; i++ {
		k, v := m.Pair(i)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(k)))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(v)))
	}
	for i := 0; i < n; i++ {
		k, v := m.Pair(i)
		out = append(append(append(append(out, k...), 0), v...), 0)
	}
	return out
}
