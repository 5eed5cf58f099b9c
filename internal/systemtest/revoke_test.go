package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestRevokeAllSessions gives one customer 1,000 sessions whose ids start
// with every byte value (each of the 256 about four times; the last byte
// takes the boundary values 00, 7f, 80, fe, ff too), logged in through the
// API, each served by the edge. One DELETE /v1/customers/{cid}/sessions
// must answer {"revoked":1000}, and afterwards every one of the 1,000
// tokens is refused by every VM of the edge: a VM that had the session
// cached learns it from the feed, one that had not learns it from the
// origin (410).
func TestRevokeAllSessions(t *testing.T) {
	const n, vms, customer = 1000, 2, "many-sessions"
	s := startSystem(t, systemOptions{VMs: vms})
	ids := make([]wire.ID, n)
	toks := make([]string, n)
	boundary := []byte{0x00, 0x7f, 0x80, 0xfe, 0xff}
	for i := range ids {
		ids[i] = newID(t)
		ids[i][0] = byte(i)
		if i < 256*len(boundary) && i/256 < len(boundary) {
			ids[i][wire.IDLen-1] = boundary[i/256]
		}
	}
	// Log each in, creating it (?upsert=true), eight at a time.
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := range work {
				code, b := s.api(s.appKey, "POST", "/v1/sessions/"+ids[i].String()+"/login?upsert=true", `{"customerId":"`+customer+`"}`)
				var out struct {
					Token string `json:"token"`
				}
				if code != 200 || json.Unmarshal(b, &out) != nil || out.Token == "" {
					t.Errorf("login %s: %d %s", ids[i], code, b)
					continue
				}
				toks[i] = out.Token
			}
		})
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	first := map[byte]bool{}
	for _, id := range ids {
		first[id[0]] = true
	}
	if len(first) != 256 {
		t.Fatalf("the ids start with %d different bytes, want 256", len(first))
	}
	code, b := s.api(s.adminKey, "GET", "/v1/customers/"+customer+"/sessions", "")
	var list struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list.Sessions) != n {
		t.Fatalf("GET /v1/customers/%s/sessions: %d, %d sessions, want %d", customer, code, len(list.Sessions), n)
	}

	// Every token is served by the edge, as the customer's session.
	c := s.client(2, 16)
	served := func(i int) (bool, error) {
		r, err := do(c, "GET", "/account", nil, "cookie", "__Host-sid="+toks[i])
		if err != nil || r.status != 200 {
			return false, fmt.Errorf("token %d (%s): %v %+v", i, ids[i], err, r)
		}
		if r.echo.ID == ids[i].String() {
			if r.echo.Customer != customer || r.echo.Status != "ok" {
				return true, fmt.Errorf("token %d (%s) served as %+v", i, ids[i], r.echo)
			}
			return true, nil
		}
		if r.echo.Status != "new" || r.cookies["__Host-sid"] == "" {
			return false, fmt.Errorf("token %d (%s) refused, but answered %+v", i, ids[i], r.echo)
		}
		return false, nil
	}
	for i := range toks {
		if ok, err := served(i); err != nil || !ok {
			t.Fatalf("before the revocation: %v (served %v)", err, ok)
		}
	}

	// One call ends them all.
	start := time.Now()
	code, b = s.api(s.adminKey, "DELETE", "/v1/customers/"+customer+"/sessions", "")
	if code != 200 || !bytes.Equal(bytes.TrimSpace(b), []byte(`{"revoked":`+strconv.Itoa(n)+`}`)) {
		t.Fatalf("DELETE /v1/customers/%s/sessions: %d %s, want {\"revoked\":%d}", customer, code, b, n)
	}
	took := time.Since(start)

	// Every token, sent twice in a row (so to both VMs: the edge picks
	// them round robin and nothing else is sent meanwhile), is refused.
	// The first pass may still meet a VM the feed has not reached; the
	// passes repeat until one refuses all, within the deadline.
	var left []int
	passes := 0
	waitUntil(t, 20*time.Second, "every token refused on every VM", func() bool {
		passes++
		left = left[:0]
		for i := range toks {
			for k := 0; k < vms; k++ {
				ok, err := served(i)
				if err != nil {
					t.Fatalf("after the revocation: %v", err)
				}
				if ok {
					left = append(left, i)
				}
			}
		}
		return len(left) == 0
	})
	code, b = s.api(s.adminKey, "GET", "/v1/customers/"+customer+"/sessions", "")
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list.Sessions) != 0 {
		t.Errorf("after the revocation GET /v1/customers/%s/sessions: %d %s", customer, code, b)
	}
	report(t, "revoke all: %d sessions of one customer (ids starting with all 256 byte values) revoked in one call (%v): {\"revoked\":%d}; all %d tokens refused on both VMs in pass %d (%d requests per pass)",
		n, took.Round(time.Millisecond), n, n, passes, n*vms)
}
