package systemtest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// shopper is a browser going through the edge: it keeps the session and
// hint cookies, tells the app (headers test-sid, test-gen) which token it
// sent so the app can check the view, and runs the cycle mint → app write →
// login → app write as customer → logout, with requests spread over the
// edge's VMs after every step.
type shopper struct {
	s        *system
	c        *fasthttp.HostClient
	customer string
	tok      string
	hint     string

	requests, failures atomic.Int64
	mu                 sync.Mutex
	created            map[string]bool // sessions whose token came back: the origin stores them
	lastErr            string
}

func newShopper(s *system, c *fasthttp.HostClient, customer string) *shopper {
	return &shopper{s: s, c: c, customer: customer, created: map[string]bool{}}
}

func (sh *shopper) fail(msg string) {
	sh.failures.Add(1)
	sh.mu.Lock()
	sh.lastErr = msg
	sh.mu.Unlock()
}

// get sends one request with the shopper's cookies.
func (sh *shopper) get(path string) *result {
	var hs []string
	sid := ""
	if sh.tok != "" {
		cl, err := sh.s.claims(sh.tok)
		if err != nil {
			sh.fail("own token does not verify: " + err.Error())
			sh.tok, sh.hint = "", ""
		} else {
			cookie := "__Host-sid=" + sh.tok
			if sh.hint != "" {
				cookie += "; __Host-sidv=" + sh.hint
			}
			sid = cl.ID.String()
			hs = []string{"cookie", cookie, "test-sid", sid, "test-gen", strconv.FormatUint(uint64(cl.Generation), 10)}
		}
	}
	if sh.tok == "" {
		hs = []string{"test-gen", "0"}
	}
	sh.requests.Add(1)
	r, err := do(sh.c, "GET", path, nil, hs...)
	if err != nil {
		sh.fail(path + ": " + err.Error())
		return nil
	}
	if r.status != 200 {
		sh.fail(path + ": status " + strconv.Itoa(r.status))
		return nil
	}
	if sid != "" {
		// The token came back: the origin stores the session (from the
		// edge's touch report, or from the app's write).
		sh.mu.Lock()
		sh.created[sid] = true
		sh.mu.Unlock()
	}
	if tok, ok := r.cookies["__Host-sid"]; ok {
		sh.tok = tok
	}
	if hint, ok := r.cookies["__Host-sidv"]; ok {
		sh.hint = hint
	}
	return r
}

// cycle runs one shopping session with spread requests after each step.
func (sh *shopper) cycle(spread int) {
	sh.tok, sh.hint = "", ""
	pages := func() {
		for i := 0; i < spread; i++ {
			sh.get("/page")
		}
	}
	if sh.get("/") == nil {
		return
	}
	pages()
	if sh.get("/cart") == nil {
		return
	}
	pages()
	sh.get("/login?customer=" + sh.customer)
	pages()
	sh.get("/cart")
	pages()
	sh.get("/logout")
	pages()
}

// run repeats cycles until ctx ends.
func (sh *shopper) run(ctx context.Context, spread int) {
	for ctx.Err() == nil {
		sh.cycle(spread)
	}
}

func (sh *shopper) sessionsCreated() int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.created)
}
