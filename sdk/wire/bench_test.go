package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/gorilla/securecookie"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Run with `make bench` (scripts/bench-wire.sh prints the comparison).

func benchKeyring(b *testing.B) *wire.Keyring {
	kr, err := wire.NewKeyring(1, map[uint8][]byte{1: []byte("bench key, exactly thirty-two b.")})
	if err != nil {
		b.Fatal(err)
	}
	return kr
}

var benchClaims = wire.Claims{Kind: wire.KindAnonymous, ID: wire.ID{1, 2, 3}, Generation: 1,
	IssuedAt: 1_767_225_600, IdleDeadline: 1_767_229_200, HardDeadline: 1_767_312_000}

func BenchmarkTokenMint(b *testing.B) {
	kr := benchKeyring(b)
	buf := make([]byte, 0, wire.TokenLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = kr.AppendToken(buf[:0], &benchClaims)
	}
}

func BenchmarkTokenVerify(b *testing.B) {
	kr := benchKeyring(b)
	tok := kr.AppendToken(nil, &benchClaims)
	var c wire.Claims
	b.ReportAllocs()
	for b.Loop() {
		if err := kr.VerifyToken(tok, benchClaims.IssuedAt, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSecureCookieDecode is the baseline: gorilla/securecookie, HMAC
// only (no encryption, like our token), decoding a value of the same 47 bytes.
func BenchmarkSecureCookieDecode(b *testing.B) {
	sc := securecookie.New([]byte("bench key, exactly thirty-two b."), nil)
	value := make([]byte, 47)
	enc, err := sc.Encode("__Host-sid", value)
	if err != nil {
		b.Fatal(err)
	}
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		if err := sc.Decode("__Host-sid", enc, &out); err != nil {
			b.Fatal(err)
		}
	}
}

var benchDelta = wire.Delta{ID: wire.ID{1, 2, 3}, BaseVersion: 41, Version: 42, At: 1_767_225_601_000,
	Ops: []wire.Op{{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "color", Value: wire.Text("red")}}}

func BenchmarkDeltaEncode(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendDelta(buf[:0], &benchDelta)
	}
	b.ReportMetric(float64(len(buf)), "bytes/delta")
}

func BenchmarkDeltaDecode(b *testing.B) {
	enc := wire.AppendDelta(nil, &benchDelta)
	var d wire.Delta
	b.ReportAllocs()
	for b.Loop() {
		if err := wire.DecodeDelta(enc, &d); err != nil {
			b.Fatal(err)
		}
	}
}

// jsonDelta is the same one-attribute delta as a JSON API would carry it.
type jsonDelta struct {
	ID          string   `json:"id"`
	BaseVersion uint64   `json:"baseVersion"`
	Version     uint64   `json:"version"`
	At          int64    `json:"at"`
	Ops         []jsonOp `json:"ops"`
}

type jsonOp struct {
	Op        string `json:"op"`
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

func oneAttrJSON() []byte {
	b, _ := json.Marshal(jsonDelta{ID: benchDelta.ID.String(), BaseVersion: 41, Version: 42, At: benchDelta.At,
		Ops: []jsonOp{{Op: "setAttr", Namespace: "custom", Key: "color", Value: "red"}}})
	return b
}

func BenchmarkDeltaEncodeJSON(b *testing.B) {
	var n int
	b.ReportAllocs()
	for b.Loop() {
		n = len(oneAttrJSON())
	}
	b.ReportMetric(float64(n), "bytes/delta")
}

func TestOneAttributeDeltaSize(t *testing.T) {
	n := len(wire.AppendDelta(nil, &benchDelta))
	if n > 64 {
		t.Fatalf("a one-attribute delta is %d bytes, the target is ≤ 64", n)
	}
	t.Logf("one-attribute delta: %d bytes CBOR, %d bytes JSON", n, len(oneAttrJSON()))
}
