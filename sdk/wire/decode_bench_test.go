package wire

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/fuzzbudget"
)

// The decode benchmarks of docs/benchmarks.md ("Decoding untrusted input"):
// scripts/bench-decode.sh runs them natively and in the guest runtime.

var decodeSizes = []int{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}

// benchKeys returns n distinct attribute keys, shuffled (a fixed seed): the
// JSON decoder has to sort them.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

// contextJSON is a context body {"custom":{...n keys...}} as a client sends it.
func contextJSON(n int) []byte {
	b := []byte(`{"custom":{`)
	for i, k := range benchKeys(n) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(append(AppendStringJSON(b, k), ':'), int64(i), 10)
	}
	return append(b, "}}"...)
}

// contextCBOR is the same body in CBOR (keys in deterministic order).
func contextCBOR(n int) []byte {
	as := make([]Attr, n)
	for i, k := range benchKeys(n) {
		as[i] = Attr{Key: k, Value: Int(int64(i))}
	}
	return AppendValue(nil, Map(Attr{"custom", Map(as...)}))
}

func sizeName(n int) string { return strconv.Itoa(n>>10) + "k" }

// benchDecode reports ns/key, wall time per key of the body. With cpu set,
// on Linux, it also reports cpu-ns/key: the CPU time of the decoding thread
// per key, which other processes on a shared machine do not inflate (it
// includes the collector's assists, not its background workers).
func benchDecode(b *testing.B, n int, in []byte, decode func([]byte) error, wantErr, cpu bool) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	cpu = cpu && runtime.GOOS == "linux"
	var used time.Duration
	run := func() {
		if err := decode(in); (err != nil) != wantErr {
			b.Fatalf("decode: %v", err)
		}
	}
	for b.Loop() {
		if cpu {
			used += fuzzbudget.Measure(run)
		} else {
			run()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/key")
	if cpu {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/key")
	}
}

// BenchmarkDecodeObject decodes a context body of n keys with the limits
// raised so it is accepted: the time per key stays flat as n grows.
func BenchmarkDecodeObject(b *testing.B) {
	benchDecodeSizes(b, &Limits{MaxAttrs: 1 << 20}, false, true)
}

// BenchmarkDecodeRefused decodes the same bodies with the default limits:
// each is refused once its object passes MaxAttrs keys, so the cost per body
// stays flat whatever its size (ns/key here divides by the body's keys).
func BenchmarkDecodeRefused(b *testing.B) {
	benchDecodeSizes(b, &DefaultLimits, true, false)
}

// benchDecodeSizes runs benchDecode (wantErr and cpu as it takes them) on
// the JSON and the CBOR context body of each of decodeSizes, under lim.
func benchDecodeSizes(b *testing.B, lim *Limits, wantErr, cpu bool) {
	for _, n := range decodeSizes {
		js, cb := contextJSON(n), contextCBOR(n)
		b.Run("json/"+sizeName(n), func(b *testing.B) {
			benchDecode(b, n, js, func(in []byte) error { _, err := ParseValueJSONLimits(in, lim); return err }, wantErr, cpu)
		})
		b.Run("cbor/"+sizeName(n), func(b *testing.B) {
			benchDecode(b, n, cb, func(in []byte) error { _, err := DecodeValueLimits(in, lim); return err }, wantErr, cpu)
		})
	}
}
