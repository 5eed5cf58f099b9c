//go:build !wasip1

package proxytest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// Scenarios of origin trouble (the circuit breaker, a silent feed) and of
// load (full feed batches, many touches).

// answerAll answers every pending call with status (0: failed) and returns
// how many there were.
func answerAll(e *Env, status int) int {
	p := e.Pending()
	for _, c := range p {
		e.Answer(c, status, nil)
	}
	return len(p)
}

func testBreaker(t *testing.T, ng NewGuest) {
	const extra = `,"origin":{"cluster":"origin","apiKey":"edge-key","breaker":{"failures":3,"coolDown":"5s"}}`
	t.Run("open, probe, close", func(t *testing.T) {
		f := newFixture(t, ng, extra)
		e := f.e
		_, warm := f.session(wire.KindAnonymous, 1)
		e.Request("GET", "/", nil, "cookie", warm)
		e.Serve()
		for i := 0; i < 3; i++ {
			_, c := f.session(wire.KindAnonymous, 1)
			s := e.Request("GET", "/", nil, "cookie", c)
			answerAll(e, 0) // timed out
			if s.Header("x-session-context-status") != "degraded" {
				t.Fatalf("failed fetch %d: %v", i, s.Headers())
			}
		}
		if e.Metric("sessionedge_breaker_open") != 1 || !e.Logged("circuit breaker open") {
			t.Fatalf("breaker not open after 3 failures: metric %d, logs %v", e.Metric("sessionedge_breaker_open"), e.Logs())
		}
		// Open: an uncached token gets failMode at once, without a call.
		_, cold := f.session(wire.KindAnonymous, 1)
		s := e.Request("GET", "/", nil, "cookie", cold)
		if len(e.Pending()) != 0 || s.Action != uint32(abi.ActionContinue) || s.Header("x-session-context-status") != "degraded" {
			t.Fatalf("open breaker: calls %d, action %d, %v", len(e.Pending()), s.Action, s.Headers())
		}
		// Cached sessions are served as usual.
		if s := e.Request("GET", "/", nil, "cookie", warm); s.Header("x-session-context-status") != "ok" {
			t.Fatal("a cached session was not served while the breaker is open")
		}
		// Self-service writes and soft logouts make no call either.
		s = e.Request("PATCH", "/.session/context", []byte(`{"public":{"a":1}}`), "cookie", warm)
		if l := s.Local(); l == nil || l.Status != 503 || len(e.Pending()) != 0 {
			t.Fatalf("write with the breaker open: %+v", l)
		}
		// After the cool-down one request probes; others still fail fast.
		e.Advance(5 * time.Second)
		probe := e.Request("GET", "/", nil, "cookie", cold)
		_, other := f.session(wire.KindAnonymous, 1)
		fast := e.Request("GET", "/", nil, "cookie", other)
		if len(e.Pending()) != 1 || fast.Header("x-session-context-status") != "degraded" {
			t.Fatalf("half-open: %d calls", len(e.Pending()))
		}
		answerAll(e, 0) // the probe fails: open for another cool-down
		if probe.Header("x-session-context-status") != "degraded" || e.Metric("sessionedge_breaker_open") != 1 {
			t.Fatal("failed probe")
		}
		e.Request("GET", "/", nil, "cookie", cold)
		if len(e.Pending()) != 0 {
			t.Fatal("a call went out right after a failed probe")
		}
		e.Advance(5 * time.Second)
		probe = e.Request("GET", "/", nil, "cookie", cold)
		e.Serve()
		if probe.Header("x-session-context-status") != "ok" || e.Metric("sessionedge_breaker_open") != 0 || !e.Logged("circuit breaker closed") {
			t.Fatalf("successful probe: %v, metric %d", probe.Headers(), e.Metric("sessionedge_breaker_open"))
		}
		s = e.Request("GET", "/", nil, "cookie", other)
		if len(e.Pending()) != 1 {
			t.Fatal("closed breaker: no fetch")
		}
		e.Serve()
	})
	t.Run("probed from the tick", func(t *testing.T) {
		// Two VMs of one proxy: VM 0 holds the sync lease, VM 1 follows
		// and makes no call of its own but touch reports.
		o := NewOrigin(Start)
		o.APIKey = "edge-key"
		cfg := Config(baseExtra + `,"sync":{"interval":"100ms"},` +
			`"origin":{"cluster":"origin","apiKey":"edge-key","breaker":{"failures":3,"coolDown":"1s"}}`)
		vms := []*Env{NewEnv(t, ng, o), NewEnv(t, ng, o)}
		vms[1].ShareData(vms[0])
		for _, e := range vms {
			e.MustConfigure(cfg)
		}
		leader, vm := vms[0], vms[1]
		f := &fixture{t: t, o: o, e: vm}
		// step lets one interval pass: the leader polls (served), then VM 1
		// ticks; it returns the calls VM 1 made, unanswered.
		step := func(ticks ...*Env) []*abi.MockCall {
			o.Now = o.Now.Add(100 * time.Millisecond)
			for _, e := range vms {
				e.SetNow(o.Now)
			}
			for _, e := range ticks {
				e.Tick()
				if e != vm {
					e.Serve()
				}
			}
			return vm.Pending()
		}
		step(leader, vm)
		id, warm := f.session(wire.KindAnonymous, 1)
		vm.Request("GET", "/", nil, "cookie", warm).Finish()
		vm.Serve()
		step(leader, vm)
		vm.Serve() // the warm session's first report
		open := func() {
			t.Helper()
			for i := 0; i < 3; i++ {
				_, c := f.session(wire.KindAnonymous, 1)
				vm.Request("GET", "/", nil, "cookie", c).Finish()
				answerAll(vm, 0)
			}
			if vm.Metric("sessionedge_breaker_open") != 1 {
				t.Fatalf("breaker not open: %v", vm.Logs())
			}
		}
		open()
		// Only the cached session comes back: its reports wait while the
		// breaker is open, then one goes out as the probe.
		touches := len(o.Touches)
		var probe *abi.MockCall
		for i := 0; i < 20 && probe == nil; i++ {
			if s := vm.Request("GET", "/", nil, "cookie", warm); s.Header("x-session-context-status") != "ok" {
				t.Fatalf("cached session while the breaker is open: %v", s.Headers())
			}
			for _, c := range step(leader, vm) {
				if i < 9 {
					t.Fatalf("a call during the cool-down: %s %s", c.Header(":method"), c.Header(":path"))
				}
				probe = c
			}
		}
		if probe == nil || probe.Header(":path") != "/v1/sync/touch" || len(vm.Pending()) != 1 {
			t.Fatalf("no probe from the tick after the cool-down (breaker open %d): %+v", vm.Metric("sessionedge_breaker_open"), vm.Pending())
		}
		vm.Serve()
		if vm.Metric("sessionedge_breaker_open") != 0 || !vm.Logged("circuit breaker closed") {
			t.Fatalf("the probe's answer did not close the breaker: %d", vm.Metric("sessionedge_breaker_open"))
		}
		if got := o.Touches[touches:]; len(got) == 0 || touchOf(t, got, id).Generation != 1 {
			t.Fatalf("the waiting reports did not reach the origin: %+v", got)
		}

		// A VM that has nothing to report: VM 1 held the lease when its
		// polls failed, then lost it; after the cool-down a poll of its
		// own is the probe.
		for i := 0; i < 5; i++ { // VM 1 alone: it takes the lease when the leader's runs out
			for _, c := range step(vm) {
				st, b, hs := o.Reply(c)
				vm.Answer(c, st, b, hs...)
			}
		}
		for i := 0; i < 3; i++ {
			step(vm)
			answerAll(vm, 503)
		}
		if vm.Metric("sessionedge_breaker_open") != 1 {
			t.Fatal("failing polls did not open the breaker")
		}
		for i := 0; i < 5; i++ { // the leader takes the lease back
			step(leader)
		}
		probe = nil
		for i := 0; i < 20 && probe == nil; i++ {
			for _, c := range step(leader, vm) {
				probe = c
			}
		}
		if probe == nil || !strings.HasPrefix(probe.Header(":path"), "/v1/sync?") || len(vm.Pending()) != 1 {
			t.Fatalf("no probe from an idle VM after the cool-down: %+v", vm.Pending())
		}
		vm.Serve()
		if vm.Metric("sessionedge_breaker_open") != 0 {
			t.Fatal("the probe's answer did not close the breaker")
		}
		// The probe's answer is not a batch to publish: the leader's ring
		// goes on, and VM 1 follows it.
		o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("CHF")})
		step(leader, vm)
		if s := vm.Request("GET", "/", nil, "cookie", warm); s.Header("x-session-currency") != "CHF" || len(vm.Pending()) != 0 {
			t.Fatalf("after the probe VM 1 does not follow the feed: %v", s.Headers())
		}
	})
	t.Run("fail closed", func(t *testing.T) {
		f := newFixture(t, ng, extra+`,"failMode":"closed"`)
		e := f.e
		for i := 0; i < 3; i++ {
			_, c := f.session(wire.KindAnonymous, 1)
			e.Request("GET", "/", nil, "cookie", c)
			answerAll(e, 503)
		}
		_, c := f.session(wire.KindAnonymous, 1)
		s := e.Request("GET", "/", nil, "cookie", c)
		if l := s.Local(); l == nil || l.Status != 503 || len(e.Pending()) != 0 {
			t.Fatalf("fail closed with the breaker open: %+v", l)
		}
	})
	t.Run("a 4xx is an answer", func(t *testing.T) {
		f := newFixture(t, ng, extra)
		e := f.e
		for i := 0; i < 5; i++ {
			id, _ := wire.NewID()
			e.Request("GET", "/", nil, "cookie", cookieOf(claimsAt(wire.KindAnonymous, id, 1, e.Now(), time.Hour, 2*time.Hour)))
			e.Serve() // 404: unknown session
		}
		if e.Metric("sessionedge_breaker_open") != 0 {
			t.Fatal("404 answers opened the breaker")
		}
	})
}

func testMaxStale(t *testing.T, ng NewGuest) {
	// The failing polls would open the circuit breaker (then a stale entry
	// gets failMode at once, checked at the end); a high threshold shows the
	// revalidation first.
	f := newFixture(t, ng, `,"sync":{"interval":"100ms"},"cache":{"maxStale":"1s"},`+
		`"origin":{"cluster":"origin","apiKey":"edge-key","breaker":{"failures":1000}}`)
	e := f.e
	_, cookie := f.session(wire.KindAnonymous, 1)
	e.Tick()
	e.Serve() // joins the feed
	e.Request("GET", "/", nil, "cookie", cookie)
	e.Serve()
	// The feed fails: every poll answers 503.
	for i := 0; i < 12; i++ {
		e.Advance(100 * time.Millisecond)
		e.Tick()
		for _, c := range e.Pending() {
			if strings.HasPrefix(c.Header(":path"), "/v1/sync?") {
				e.Answer(c, 503, nil)
			} else {
				st, b, hs := f.o.Reply(c)
				e.Answer(c, st, b, hs...)
			}
		}
	}
	if e.Metric("sessionedge_feed_stale") != 1 || !e.Logged("sync feed silent") {
		t.Fatalf("feed not stale after 1.2s of failed polls: metric %d", e.Metric("sessionedge_feed_stale"))
	}
	// A cached session is revalidated; if that fails too, it is degraded,
	// never served as ok.
	s := e.Request("GET", "/", nil, "cookie", cookie)
	if len(e.Pending()) != 1 {
		t.Fatalf("stale cache: %d calls, want a revalidating fetch", len(e.Pending()))
	}
	answerAll(e, 0)
	if s.Header("x-session-context-status") != "degraded" {
		t.Fatalf("stale cache, origin down: status %q", s.Header("x-session-context-status"))
	}
	s = e.Request("GET", "/", nil, "cookie", cookie)
	e.Serve()
	if s.Header("x-session-context-status") != "ok" {
		t.Fatalf("revalidated: status %q", s.Header("x-session-context-status"))
	}
	// Just revalidated: trusted for maxStale.
	s = e.Request("GET", "/", nil, "cookie", cookie)
	if len(e.Pending()) != 0 || s.Header("x-session-context-status") != "ok" {
		t.Fatal("a session revalidated a moment ago was fetched again")
	}
	// The feed recovers.
	e.Advance(100 * time.Millisecond)
	e.Tick()
	e.Serve()
	e.Tick()
	if e.Metric("sessionedge_feed_stale") != 0 || !e.Logged("sync feed delivering again") {
		t.Fatalf("feed recovered: metric %d", e.Metric("sessionedge_feed_stale"))
	}

	// With the default breaker the failing polls open it, and a stale
	// entry gets failMode without a call.
	g := newFixture(t, ng, `,"sync":{"interval":"100ms"},"cache":{"maxStale":"1s"}`)
	_, cookie = g.session(wire.KindAnonymous, 1)
	g.e.Tick()
	g.e.Serve()
	g.e.Request("GET", "/", nil, "cookie", cookie)
	g.e.Serve()
	for i := 0; i < 12; i++ {
		g.e.Advance(100 * time.Millisecond)
		g.e.Tick()
		answerAll(g.e, 503)
	}
	s = g.e.Request("GET", "/", nil, "cookie", cookie)
	if len(g.e.Pending()) != 0 || s.Header("x-session-context-status") != "degraded" || g.e.Metric("sessionedge_breaker_open") != 1 {
		t.Fatalf("stale feed and open breaker: %d calls, status %q", len(g.e.Pending()), s.Header("x-session-context-status"))
	}
}

func testFullBatches(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"sync":{"interval":"100ms","limit":2}`)
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1)
	e.Tick()
	e.Serve() // joins at the head
	e.Request("GET", "/", nil, "cookie", cookie)
	e.Serve()
	for i := 0; i < 5; i++ {
		f.o.Write(id, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "n", Value: wire.Int(int64(i))})
	}
	polls := f.o.Polls
	e.Advance(100 * time.Millisecond)
	e.Tick()
	e.Serve()
	if got := f.o.Polls - polls; got != 3 {
		t.Fatalf("%d polls for 5 deltas at limit 2 in one tick, want 3 (2, 2, 1)", got)
	}
	if s := e.Request("GET", "/", nil, "cookie", cookie); s.Header("x-session-version") != strconv.FormatUint(f.o.Sessions[id].Version, 10) || len(e.Pending()) != 0 {
		t.Fatalf("after the catch-up: version %q", s.Header("x-session-version"))
	}
}

func testTouchLoad(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"sync":{"interval":"100ms","touchBuffer":6000}`)
	e := f.e
	e.M.Discard = true // header maps are not what this measures
	returning := func(n int) {
		for i := 0; i < n; i++ {
			id, _ := wire.NewID()
			s := e.Request("GET", "/", nil, "cookie", cookieOf(claimsAt(wire.KindAnonymous, id, 1, e.Now(), time.Hour, 2*time.Hour)))
			for _, c := range e.Pending() {
				e.Answer(c, 404, nil) // edge-minted, not yet reported
			}
			s.Finish()
		}
	}
	returning(5500)
	e.Advance(100 * time.Millisecond)
	e.Tick()
	var posts []*abi.MockCall
	for _, c := range e.Pending() {
		if c.Header(":path") == "/v1/sync/touch" {
			posts = append(posts, c)
		}
	}
	total := 0
	for _, c := range posts {
		ts, err := wire.DecodeTouches(c.Body, nil)
		if err != nil {
			t.Fatal(err)
		}
		total += len(ts)
	}
	if len(posts) != 2 || total != 5500 {
		t.Fatalf("%d posts with %d touches, want 2 with 5500", len(posts), total)
	}
	// The posts fail: the reports are kept, and the buffer's cap (6000,
	// counting reports in flight) drops only sessions not yet in it.
	for _, c := range posts {
		e.Answer(c, 503, nil)
	}
	returning(600)
	if got := e.Metric("sessionedge_touches_dropped_total"); got != 100 {
		t.Fatalf("%d reports dropped at the cap, want 100", got)
	}
	e.Advance(100 * time.Millisecond)
	e.Tick()
	total = 0
	for _, c := range e.Pending() {
		if c.Header(":path") == "/v1/sync/touch" {
			ts, _ := wire.DecodeTouches(c.Body, nil)
			total += len(ts)
		}
	}
	if total != 6000 {
		t.Fatalf("%d touches after the failed posts, want all 6000 kept", total)
	}
	e.Serve()
	if n := strconv.Itoa(len(f.o.Touches)); n != "6000" {
		t.Fatalf("the origin got %s touches", n)
	}
}
