package systemtest

import (
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
)

// slowFetches is a reverse proxy in front of the origin that holds the
// answers to session fetches (GET /v1/sessions/{id}) for delay while it
// is set; the feed and everything else pass at once.
type slowFetches struct {
	delay atomic.Int64
}

func (p *slowFetches) start(t testing.TB, originURL string) string {
	u, err := url.Parse(originURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	ln := testbin.Listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(p.delay.Load()); d > 0 && r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/sessions/") {
			w = &heldWriter{ResponseWriter: w, hold: d}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// heldWriter holds the origin's answer for hold before it passes it on.
type heldWriter struct {
	http.ResponseWriter
	hold time.Duration
	held bool
}

func (w *heldWriter) WriteHeader(code int) {
	if !w.held {
		w.held = true
		time.Sleep(w.hold)
	}
	w.ResponseWriter.WriteHeader(code)
}

// TestFeedDuringFetch makes the origin's answer to a session fetch arrive
// after the feed delivered a change of that session, which then had no
// cached entry to apply to: a write the app did not report through the
// edge, and a revocation. The request that waited for the fetch may get
// the older view; every later request must see the change within the
// feed's bound (a sync interval plus a round trip; the deadline here is
// generous), not the older view for as long as the session sees no other
// change.
func TestFeedDuringFetch(t *testing.T) {
	const interval = 200 * time.Millisecond
	proxy := &slowFetches{}
	s := startSystem(t, systemOptions{VMs: 1, Plugin: map[string]any{"sync": map[string]any{"interval": interval.String()}},
		OriginProxy: func(u string) string { return proxy.start(t, u) }})
	c := s.client(2, 4)
	// The VM follows the feed.
	wid, wtok := s.createCustomer("race-warm")
	s.warm(c, 1, wid, wtok, func(r *result) bool { return r.status == 200 && r.echo.Status == "ok" })

	// inFlight sends a request with tok whose fetch is held for four
	// sync intervals, runs change while it waits, and returns what the
	// request was forwarded.
	inFlight := func(tok string, change func()) *result {
		proxy.delay.Store(int64(4 * interval))
		defer proxy.delay.Store(0)
		done := make(chan *result, 1)
		go func() {
			r, err := do(c, "GET", "/held", nil, "cookie", "__Host-sid="+tok)
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		time.Sleep(interval / 2) // the fetch is out
		change()
		return <-done
	}

	// An unreported write.
	id, tok := s.createCustomer("race-write")
	var written uint64
	first := inFlight(tok, func() {
		code, b := s.api(s.appKey, "PATCH", "/v1/sessions/"+id.String()+"/context", `{"currency":"CHF"}`)
		var out struct {
			Version uint64 `json:"version"`
		}
		if code != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("write: %d %s", code, b)
		}
		written = out.Version
	})
	if first.echo.Version >= written {
		t.Logf("the held fetch saw the write already (version %d): the race was not provoked", first.echo.Version)
	}
	took := waitUntil(t, 10*interval, "a later request to see the write", func() bool {
		r, err := do(c, "GET", "/after", nil, "cookie", "__Host-sid="+tok)
		return err == nil && r.echo.Version >= written
	})
	report(t, "feed during a fetch: the held request saw version %d; the write (version %d) seen %v after it",
		first.echo.Version, written, took.Round(time.Millisecond))

	// A revocation.
	rid, rtok := s.createCustomer("race-revoked")
	first = inFlight(rtok, func() {
		if n := s.revokeCustomer("race-revoked"); n != 1 {
			t.Fatalf("revoked %d", n)
		}
	})
	took = waitUntil(t, 10*interval, "a later request to refuse the revoked token", func() bool {
		r, err := do(c, "GET", "/after", nil, "cookie", "__Host-sid="+rtok)
		return err == nil && r.echo.ID != rid.String()
	})
	report(t, "feed during a fetch: the held request was served as %s (%s); the revocation refused %v after it",
		first.echo.Kind, first.echo.Status, took.Round(time.Millisecond))
}
