package proxywasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestPairIter(t *testing.T) {
	good := AppendPairs(nil, "a", "1", "b", "")
	tests := []struct {
		name string
		data []byte
		want error
		n    int // pairs yielded
	}{
		{"ok", good, nil, 2},
		{"empty map", []byte{0, 0, 0, 0}, nil, 0},
		{"empty buffer", nil, nil, 0},
		{"short", []byte{1, 0}, ErrMapFormat, 0},
		{"count beyond lengths", []byte{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, ErrMapFormat, 0},
		{"missing value NUL", append(append([]byte(nil), good[:len(good)-4]...), 'x', '1', 0, 0), ErrMapFormat, 0},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrMapFormat, 2},
		{"trailing byte after no pairs", []byte{0, 0, 0, 0, 0}, ErrMapFormat, 0},
		{"truncated", good[:len(good)-1], ErrMapFormat, 1},
		{"too many pairs", binary.LittleEndian.AppendUint32(nil, MaxMapPairs+1), ErrMapLimit, 0},
		{"too large", make([]byte, MaxMapBytes+1), ErrMapLimit, 0},
		{"huge length", append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1), 0xFFFFFFFF), 0), 0, 0), ErrMapFormat, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := NewPairIter(tt.data)
			n := 0
			for it.Next() {
				n++
			}
			if !errors.Is(it.Err(), tt.want) || n != tt.n {
				t.Fatalf("yielded %d pairs, err %v; want %d, %v", n, it.Err(), tt.n, tt.want)
			}
		})
	}
}

func TestPairsRoundTrip(t *testing.T) {
	kv := []string{":status", "200", "set-cookie", "a=1", "set-cookie", "b=2", "empty", ""}
	b := AppendPairs(nil, kv...)
	if len(b) != PairsSize(4, len(":status200set-cookiea=1set-cookieb=2empty")) {
		t.Fatalf("encoded %d bytes, PairsSize says %d", len(b), PairsSize(4, 41))
	}
	if !bytes.Equal(b, AppendPairs(nil, [][]byte{[]byte(":status"), []byte("200"), []byte("set-cookie"), []byte("a=1"),
		[]byte("set-cookie"), []byte("b=2"), []byte("empty"), nil}...)) {
		t.Fatal("string and byte encodings differ")
	}
	it := NewPairIter(b)
	var got []string
	for it.Next() {
		got = append(got, string(it.Key()), string(it.Value()))
	}
	if it.Err() != nil || len(got) != len(kv) || it.Len() != 4 {
		t.Fatalf("decoded %q, err %v", got, it.Err())
	}
	for i := range kv {
		if got[i] != kv[i] {
			t.Fatalf("pair %d: %q, want %q", i/2, got[i], kv[i])
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		it := NewPairIter(b)
		for it.Next() {
		}
	})
	if allocs != 0 {
		t.Errorf("walking a map allocates %.1f times, want 0", allocs)
	}
}

func TestStatus(t *testing.T) {
	if StatusOK.Err() != nil {
		t.Fatal("OK is an error")
	}
	err := StatusNotFound.Err()
	if !errors.Is(err, StatusNotFound) || errors.Is(err, StatusBadArgument) || err.Error() != "proxy-wasm status NOT_FOUND" {
		t.Fatalf("NOT_FOUND as an error: %v", err)
	}
	for s, want := range map[Status]string{StatusCASMismatch: "CAS_MISMATCH", StatusUnimplemented: "UNIMPLEMENTED", 5: "UNKNOWN", 99: "UNKNOWN"} {
		if s.String() != want {
			t.Errorf("Status(%d) = %s, want %s", s, s, want)
		}
	}
}

func FuzzPairIter(f *testing.F) {
	f.Add(AppendPairs(nil, "a", "1", "cookie", "x=y"))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		it := NewPairIter(data)
		var kv [][]byte
		for it.Next() {
			kv = append(kv, it.Key(), it.Value())
		}
		if it.Err() != nil {
			return
		}
		// A map that decodes encodes back to the same bytes (an empty buffer
		// is the empty map).
		if b := AppendPairs(nil, kv...); len(data) != 0 && !bytes.Equal(b, data) {
			t.Fatalf("round trip differs: %x → %x", data, b)
		}
	})
}
