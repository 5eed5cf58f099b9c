package compare_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/compare"
)

// BenchmarkHeadline is the headline comparison of docs/benchmarks.md
// (scripts/bench-compare.sh): the same app page served by the three modes,
// loaded in alternating rounds by the same load generator, one session per
// connection. It prints the tables; the benchmark's own ns/op means nothing.
// COMPARE_ROUNDS (7), COMPARE_DURATION (2s) and COMPARE_CONNS (32) tune it.
func BenchmarkHeadline(b *testing.B) {
	rounds := envInt(b, "COMPARE_ROUNDS", 7)
	conns := envInt(b, "COMPARE_CONNS", 32)
	d, err := time.ParseDuration(envString("COMPARE_DURATION", "2s"))
	if err != nil {
		b.Fatalf("COMPARE_DURATION: %v", err)
	}
	r := start(b, conns)
	// Every mode serves every client's page before the rounds (the edge
	// fetches each session from the origin once, then serves it cached).
	for _, m := range r.modes {
		if res := compare.Load(m.addr, host, path, m.clients, time.Minute, int64(20*len(m.clients))); res.Bad != 0 {
			b.Fatalf("%s warm-up: %d bad answers (first: %s)", m.name, res.Bad, res.FirstBad)
		}
	}
	const base = 1 // cookie+redis
	results := make([][]compare.Result, len(r.modes))
	ratios := make([][]float64, len(r.modes))
	cpu := make([]map[string]time.Duration, len(r.modes))
	for i := range cpu {
		cpu[i] = map[string]time.Duration{}
	}
	b.ResetTimer()
	for round := range rounds {
		rps := make([]float64, len(r.modes))
		for k := range r.modes {
			i := (k + round) % len(r.modes) // each mode goes first in turn
			m := r.modes[i]
			before := r.cpu()
			res := compare.Load(m.addr, host, path, m.clients, d, 0)
			for name, t := range r.cpu() {
				cpu[i][name] += t - before[name]
			}
			results[i] = append(results[i], res)
			rps[i] = res.RPS
		}
		for i := range r.modes {
			ratios[i] = append(ratios[i], rps[i]/rps[base])
		}
	}
	b.StopTimer()

	fmt.Printf("\nheadline comparison: loopback, %d connections (one session each, keep-alive, one request in flight), %d alternating rounds of %v per mode, GOMAXPROCS=%d\n\n",
		conns, rounds, d, runtime.GOMAXPROCS(0))
	fmt.Printf("| mode | req/s (median round) | p50 | p99 | req/s vs cookie+redis (range) | p99 vs cookie+redis | bad answers |\n|---|---:|---:|---:|---:|---:|---:|\n")
	med := make([]compare.Result, len(r.modes))
	for i := range r.modes {
		med[i] = medians(results[i])
	}
	behind := make([]float64, rounds) // edge vs cookie+redis behind the same proxy (filter off), per round
	for k := range behind {
		behind[k] = ratios[0][k] / ratios[3][k]
	}
	slices.Sort(behind)
	for i, m := range r.modes {
		slices.Sort(ratios[i])
		fmt.Printf("| %s | %.0f | %v | %v | %.2f (%.2f–%.2f) | %.2f | %d |\n", m.name, med[i].RPS, us(med[i].P50), us(med[i].P99),
			ratios[i][len(ratios[i])/2], ratios[i][0], ratios[i][len(ratios[i])-1], float64(med[i].P99)/float64(med[base].P99), med[i].Bad)
	}
	edgeRatio := ratios[0][len(ratios[0])/2]
	verdict := "met"
	if edgeRatio < 2 || med[0].P99 >= med[base].P99 {
		verdict = "missed"
	}
	fmt.Printf("\nedge vs cookie+redis behind the same proxy (filter off): %.2f (%.2f–%.2f) req/s, p99 %.2f\n",
		behind[rounds/2], behind[0], behind[rounds-1], float64(med[0].P99)/float64(med[3].P99))
	fmt.Printf("\ntarget: edge >= 2x the req/s of cookie+redis with a lower p99: %s (%.2fx, p99 %v vs %v)\n", verdict, edgeRatio, us(med[0].P99), us(med[base].P99))

	// Where the time goes: CPU time of each process per request of a mode.
	fmt.Printf("\nCPU time per request (µs) of each process, over all rounds of a mode (/proc, 10 ms ticks):\n\n| mode |")
	for _, p := range r.procs {
		fmt.Printf(" %s |", p.name)
	}
	fmt.Printf(" total |\n|---|%s\n", strings.Repeat("---:|", len(r.procs)+1))
	for i, m := range r.modes {
		var n int64
		for _, res := range results[i] {
			n += res.Requests + res.Bad
		}
		fmt.Printf("| %s |", m.name)
		var total time.Duration
		for _, p := range r.procs {
			total += cpu[i][p.name]
			fmt.Printf(" %.1f |", perReq(cpu[i][p.name], n))
		}
		fmt.Printf(" %.1f |\n", perReq(total, n))
	}
	for i, m := range r.modes {
		if med[i].Bad != 0 {
			b.Errorf("%s: %d bad answers in the median round (first: %s)", m.name, med[i].Bad, med[i].FirstBad)
		}
	}
}

// medians returns the median of each figure over the rounds.
func medians(rs []compare.Result) compare.Result {
	pick := func(f func(compare.Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return compare.Result{
		RPS: pick(func(r compare.Result) float64 { return r.RPS }),
		P50: time.Duration(pick(func(r compare.Result) float64 { return float64(r.P50) })),
		P99: time.Duration(pick(func(r compare.Result) float64 { return float64(r.P99) })),
		Bad: int64(pick(func(r compare.Result) float64 { return float64(r.Bad) })),
	}
}

func us(d time.Duration) time.Duration { return d.Round(time.Microsecond) }

func perReq(t time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(t.Microseconds()) / float64(n)
}

// cpu returns the user+system CPU time of every process of the rig.
func (r *rig) cpu() map[string]time.Duration {
	out := make(map[string]time.Duration, len(r.procs))
	for _, p := range r.procs {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: state is the
		// 3rd field of the line, utime the 14th and stime the 15th.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		out[p.name] = time.Duration(u+s) * 10 * time.Millisecond // USER_HZ 100
	}
	return out
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(t testing.TB, name string, def int) int {
	n, err := strconv.Atoi(envString(name, strconv.Itoa(def)))
	if err != nil || n <= 0 {
		t.Fatalf("%s: want a positive integer", name)
	}
	return n
}
