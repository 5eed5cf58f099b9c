package systemtest

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/valyala/fasthttp"
)

// floodParams are the knobs of TestRevocationUnderFlood. The defaults keep
// it short for `go test`; scripts/bench-consistency.sh runs the long
// version through the environment.
type floodParams struct {
	rate        int           // SYSTEMTEST_FLOOD_RATE: cookie-less requests per second (2000)
	flood       time.Duration // SYSTEMTEST_FLOOD_SECONDS: how long the flood lasts (4)
	vms         int           // SYSTEMTEST_VMS: filter VMs (2)
	interval    time.Duration // SYSTEMTEST_SYNC_INTERVAL: the filter's sync.interval (500ms)
	revocations int           // SYSTEMTEST_REVOCATIONS: revocations measured while quiet, and at most as many under the flood (3)
}

func floodParamsFromEnv(t testing.TB) floodParams {
	p := floodParams{rate: 2000, flood: 4 * time.Second, vms: 2, interval: 500 * time.Millisecond, revocations: 3}
	num := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*dst = n
		}
	}
	secs := int(p.flood / time.Second)
	num("SYSTEMTEST_FLOOD_RATE", &p.rate)
	num("SYSTEMTEST_FLOOD_SECONDS", &secs)
	num("SYSTEMTEST_VMS", &p.vms)
	num("SYSTEMTEST_REVOCATIONS", &p.revocations)
	p.flood = time.Duration(secs) * time.Second
	if v := os.Getenv("SYSTEMTEST_SYNC_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SYSTEMTEST_SYNC_INTERVAL=%q: %v", v, err)
		}
		p.interval = d
	}
	return p
}

// flood sends cookie-less requests through the edge at a fixed rate (open
// loop: a request due while every worker is busy is counted as missed, not
// sent later), each of which makes the filter mint a session.
type flood struct {
	sent, ok, failed, notNew, missed atomic.Int64
	start, end                       time.Time
	done                             chan struct{}
}

func startFlood(ctx context.Context, c *fasthttp.HostClient, rate, workers int) *flood {
	f := &flood{start: time.Now(), done: make(chan struct{})}
	jobs := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Go(func() {
			for range jobs {
				r, err := do(c, "GET", "/flood", nil)
				switch {
				case err != nil || r.status != 200:
					f.failed.Add(1)
				case r.echo.Status != "new" || r.cookies["__Host-sid"] == "":
					f.notNew.Add(1)
				default:
					f.ok.Add(1)
				}
			}
		})
	}
	go func() {
		defer close(f.done)
		defer func() { wg.Wait(); f.end = time.Now() }()
		defer close(jobs)
		period := time.Second / time.Duration(rate)
		var issued int64
		for ctx.Err() == nil {
			due := int64(time.Since(f.start) / period)
			for ; issued < due; issued++ {
				select {
				case jobs <- struct{}{}:
					f.sent.Add(1)
				default:
					f.missed.Add(1)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return f
}

// rate is the rate of answered requests.
func (f *flood) rate() float64 {
	return float64(f.ok.Load()+f.notNew.Load()) / f.end.Sub(f.start).Seconds()
}

// victim is a customer session to revoke, warmed on every VM.
type victim struct {
	customer string
	id       wire.ID
	tok      string
}

// revocation is what measureRevocation saw.
type revocation struct {
	first, all time.Duration // after the acknowledgement: the first VM refused the token / every VM refused it
	ack        time.Duration // the DELETE's round trip
	probes     int
	accepted   int // probes served as the victim's session after the acknowledgement
	errors     int
	early      int // probes refused before the revocation was sent
}

// measureRevocation revokes v's customer while probes with v's token go
// through the edge every probeGap, each landing on whichever VM the edge
// picks (round robin, shuffled by the other traffic). A VM that has applied
// the revocation refuses the token (the request gets a new session); one
// that has not serves it. first is when the first refusal was sent, all
// when the first refusal was sent after the last acceptance was answered:
// from then on no VM served the token. Probing goes on for window after
// the acknowledgement.
func (s *system) measureRevocation(t testing.TB, c *fasthttp.HostClient, v victim, window time.Duration) revocation {
	t.Helper()
	const probeGap = 5 * time.Millisecond
	type probe struct {
		sent, answered time.Time
		accepted, err  bool
	}
	var mu sync.Mutex
	var probes []probe
	var wg sync.WaitGroup
	stop := make(chan struct{})
	launcher := make(chan struct{})
	go func() {
		defer close(launcher)
		tick := time.NewTicker(probeGap)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Go(func() {
				p := probe{sent: time.Now()}
				r, err := do(c, "GET", "/probe", nil, "cookie", "__Host-sid="+v.tok)
				p.answered = time.Now()
				switch {
				case err != nil || r.status != 200:
					p.err = true
				case r.echo.ID == v.id.String():
					p.accepted = true
					if r.echo.Customer != v.customer || r.echo.Status != "ok" {
						t.Errorf("probe served the revoked session as %+v", r.echo)
					}
				}
				mu.Lock()
				probes = append(probes, p)
				mu.Unlock()
			})
		}
	}()
	time.Sleep(10 * probeGap) // some probes before the revocation
	t0 := time.Now()
	if n := s.revokeCustomer(v.customer); n != 1 {
		t.Fatalf("revoke %s: revoked %d, want 1", v.customer, n)
	}
	t1 := time.Now()
	for time.Since(t1) < window {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-launcher
	wg.Wait()

	sort.Slice(probes, func(i, j int) bool { return probes[i].sent.Before(probes[j].sent) })
	rv := revocation{ack: t1.Sub(t0), probes: len(probes)}
	var lastAccepted time.Time
	acceptedBefore := 0
	for _, p := range probes {
		switch {
		case p.err:
			rv.errors++
		case p.accepted:
			lastAccepted = p.answered
			if p.sent.After(t1) {
				rv.accepted++
			} else {
				acceptedBefore++
			}
		case p.answered.Before(t0):
			rv.early++
		}
	}
	if acceptedBefore == 0 {
		t.Fatalf("revoke %s: no probe was served the session before the revocation (%d probes)", v.customer, len(probes))
	}
	since := func(at time.Time) time.Duration { return max(at.Sub(t1), 0) }
	rv.first, rv.all = -1, -1
	for _, p := range probes {
		if p.err || p.accepted || p.answered.Before(t0) {
			continue
		}
		if rv.first < 0 {
			rv.first = since(p.sent)
		}
		if rv.all < 0 && p.sent.After(lastAccepted) {
			rv.all = since(p.sent)
		}
	}
	if rv.all < 0 {
		t.Fatalf("revoke %s: the token was still served %v after the revocation (%d probes, %d served after it)", v.customer, window, len(probes), rv.accepted)
	}
	return rv
}

// TestRevocationUnderFlood revokes customers through the origin API, first
// on a quiet edge, then while cookie-less requests flood it at a fixed
// rate, and measures per revocation when the first VM and when every VM
// refused the revoked token. Meanwhile shoppers log in, write through the
// app and log out, with requests spread over the VMs; the app checks every
// view they are forwarded. It asserts: every revocation reached every VM
// within 1.5 sync intervals; no forwarded view of another generation than
// its token's or older than an acknowledged write (the stale-view window
// is 0); and the origin stores no session of a flood client (they never
// come back), which its sessionedge_sessions_live gauge shows.
func TestRevocationUnderFlood(t *testing.T) {
	p := floodParamsFromEnv(t)
	s := startSystem(t, systemOptions{VMs: p.vms, Plugin: map[string]any{"sync": map[string]any{"interval": p.interval.String()}}})
	floodC, probeC := s.client(2, 64), s.client(3, 64)
	window := max(2*p.interval+250*time.Millisecond, time.Second)
	bound := p.interval * 3 / 2

	// Victims: customer sessions created through the API, each served by
	// every VM (probes spread over the VMs) before it is revoked.
	victims := make([]victim, 2*p.revocations)
	for i := range victims {
		v := &victims[i]
		v.customer = "victim-" + strconv.Itoa(i)
		v.id, v.tok = s.createCustomer(v.customer)
		s.warm(probeC, p.vms, v.id, v.tok, func(r *result) bool {
			return r.status == 200 && r.echo.ID == v.id.String() && r.echo.Customer == v.customer
		})
	}
	live := func() int { return int(mustMetric(t, s.origin.AdminURL, "sessionedge_sessions_live")) }

	type phase struct {
		name        string
		revocations []revocation
		checked     int64
		stale       int64
		shopperReqs int64
		created     int
	}
	runShoppers := func(ctx context.Context, n int, ip byte) ([]*shopper, *sync.WaitGroup) {
		var wg sync.WaitGroup
		var shs []*shopper
		for i := 0; i < n; i++ {
			sh := newShopper(s, s.client(ip, 4), fmt.Sprintf("shopper-%d-%d", ip, i))
			shs = append(shs, sh)
			wg.Add(1)
			go func() { defer wg.Done(); sh.run(ctx, 2*p.vms) }()
		}
		return shs, &wg
	}
	finish := func(ph *phase, shs []*shopper, checked0, bad0 int64) {
		for _, sh := range shs {
			if f := sh.failures.Load(); f > 0 {
				t.Errorf("%s: shopper %s: %d failed requests, last: %s", ph.name, sh.customer, f, sh.lastErr)
			}
			ph.shopperReqs += sh.requests.Load()
			ph.created += sh.sessionsCreated()
		}
		ph.checked = s.app.checked.Load() - checked0
		ph.stale = s.app.bad.Load() - bad0
	}

	// Quiet: only the shoppers and the probes.
	quiet := &phase{name: "quiet"}
	checked0, bad0 := s.app.checked.Load(), s.app.bad.Load()
	ctx, cancel := context.WithCancel(context.Background())
	shs, wg := runShoppers(ctx, 2, 4)
	for i := 0; i < p.revocations; i++ {
		quiet.revocations = append(quiet.revocations, s.measureRevocation(t, probeC, victims[i], window))
	}
	cancel()
	wg.Wait()
	finish(quiet, shs, checked0, bad0)
	// Every session whose token came back is stored, the revoked ones are
	// tombstones.
	want := len(victims) - p.revocations + quiet.created
	waitUntil(t, 20*time.Second, fmt.Sprintf("%d live sessions at the origin after the quiet phase", want), func() bool { return live() == want })
	live0 := want

	// The flood, with the shoppers and the revocations under it.
	flooded := &phase{name: "flood"}
	checked0, bad0 = s.app.checked.Load(), s.app.bad.Load()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	f := startFlood(ctx, floodC, p.rate, 64)
	shs, wg = runShoppers(ctx, 2, 5)
	time.Sleep(p.interval) // the flood is on before the first revocation
	for i := p.revocations; i < len(victims) && time.Since(f.start)+window+200*time.Millisecond < p.flood; i++ {
		flooded.revocations = append(flooded.revocations, s.measureRevocation(t, probeC, victims[i], window))
	}
	for time.Since(f.start) < p.flood {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-f.done
	wg.Wait()
	finish(flooded, shs, checked0, bad0)
	if len(flooded.revocations) == 0 {
		t.Fatalf("the flood (%v) was too short for a revocation", p.flood)
	}

	// Clients that never came back left nothing at the origin. Markers,
	// sessions minted and returned after the flood on every VM, show that
	// every VM posted its touch reports since; then the live count must be
	// exactly the sessions whose tokens came back.
	want = live0 + flooded.created - len(flooded.revocations)
	markerC := s.client(6, 4)
	var markers []string
	for i := 0; i < 4*p.vms; i++ {
		r, err := do(markerC, "GET", "/marker", nil)
		if err != nil || r.cookies["__Host-sid"] == "" {
			t.Fatalf("marker: %v %+v", err, r)
		}
		tok := r.cookies["__Host-sid"]
		for j := 0; j < 2; j++ {
			if _, err := do(markerC, "GET", "/marker", nil, "cookie", "__Host-sid="+tok); err != nil {
				t.Fatal(err)
			}
		}
		markers = append(markers, r.echo.ID)
	}
	waitUntil(t, 20*time.Second, "the markers stored at the origin", func() bool {
		for _, id := range markers {
			if code, _ := s.api(s.appKey, "GET", "/v1/sessions/"+id, ""); code != 200 {
				return false
			}
		}
		return true
	})
	if got := live(); got != want+len(markers) {
		t.Errorf("the origin holds %d live sessions after a flood of %d minted sessions, want %d (the %d whose tokens came back, %d markers)",
			got, f.ok.Load(), want+len(markers), want, len(markers))
	}

	// What was measured.
	report(t, "flood: target %d req/s for %v over %d VMs (sync interval %v): achieved %.0f req/s (%d answered, %d failed, %d not minted, %d missed: every worker busy)",
		p.rate, p.flood, p.vms, p.interval, f.rate(), f.ok.Load()+f.notNew.Load(), f.failed.Load(), f.notNew.Load(), f.missed.Load())
	if f.failed.Load() > 0 || f.notNew.Load() > 0 {
		t.Errorf("flood: %d failed requests, %d answered without a minted session", f.failed.Load(), f.notNew.Load())
	}
	for _, ph := range []*phase{quiet, flooded} {
		var first, all, ack []time.Duration
		for i, rv := range ph.revocations {
			first, all, ack = append(first, rv.first), append(all, rv.all), append(ack, rv.ack)
			t.Logf("%s revocation %d: first VM %v, every VM %v after the acknowledgement (DELETE %v); %d probes, %d served after the acknowledgement, %d errors",
				ph.name, i, rv.first.Round(time.Millisecond), rv.all.Round(time.Millisecond), rv.ack.Round(time.Millisecond), rv.probes, rv.accepted, rv.errors)
			if rv.all > bound {
				t.Errorf("%s revocation %d reached every VM after %v, more than 1.5 sync intervals (%v)", ph.name, i, rv.all, bound)
			}
			if rv.early > 0 || rv.errors > 0 {
				t.Errorf("%s revocation %d: %d probes refused before the revocation, %d failed", ph.name, i, rv.early, rv.errors)
			}
		}
		report(t, "revocation %s vms=%d interval=%v n=%d first-VM p50=%s p99=%s every-VM p50=%s p99=%s DELETE p50=%s; stale views %d of %d checked (%d shopper requests, %d sessions)",
			ph.name, p.vms, p.interval, len(ph.revocations), ms(percentile(first, 50)), ms(percentile(first, 99)),
			ms(percentile(all, 50)), ms(percentile(all, 99)), ms(percentile(ack, 50)), ph.stale, ph.checked, ph.shopperReqs, ph.created)
		if ph.stale != 0 {
			t.Errorf("%s: %d of %d checked views stale or wrong:\n%s", ph.name, ph.stale, ph.checked, s.app.violationList())
		}
		if ph.checked < 50 {
			t.Errorf("%s: only %d views checked", ph.name, ph.checked)
		}
	}
	if d := s.app.degraded.Load(); d > 0 {
		t.Errorf("%d requests forwarded degraded", d)
	}
}
