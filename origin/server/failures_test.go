package server

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// failingStore fails the calls switched on with a cause the log must show.
type failingStore struct {
	store.Store
	get, claim, done atomic.Bool
	claims           atomic.Int64 // OutboxClaim calls
	claimed          atomic.Int64 // entries they handed out
}

var errDisk = errors.New("disk on fire: sector 7")

func (f *failingStore) Get(ctx context.Context, id wire.ID) (*wire.Session, error) {
	if f.get.Load() {
		return nil, errDisk
	}
	return f.Store.Get(ctx, id)
}

func (f *failingStore) OutboxClaim(ctx context.Context, limit int, lease time.Duration) ([]store.OutboxEntry, error) {
	f.claims.Add(1)
	if f.claim.Load() {
		return nil, errDisk
	}
	es, err := f.Store.OutboxClaim(ctx, limit, lease)
	f.claimed.Add(int64(len(es)))
	return es, err
}

func (f *failingStore) OutboxDone(ctx context.Context, id string) error {
	if f.done.Load() {
		return errDisk
	}
	return f.Store.OutboxDone(ctx, id)
}

// TestServerErrorsAreLogged forces store errors: the request answers 500
// without the cause, and the log has the route and the cause.
func TestServerErrorsAreLogged(t *testing.T) {
	cfg := baseConfig(t)
	fs := &failingStore{Store: cfg.Store}
	cfg.Store = fs
	logs := &testbin.Buffer{}
	cfg.Logger = logs.Logger()
	o := startOrigin(t, cfg)
	id := o.create(nil)
	fs.get.Store(true)
	for _, c := range []struct{ method, path, route string }{
		{"GET", "/v1/sessions/" + id, "get"},
		{"PATCH", "/v1/sessions/" + id + "/context", "patch_context"},
	} {
		r := o.do(c.method, c.path, keyAll, `{"custom":{"a":1}}`)
		if r.status != 500 || strings.Contains(string(r.body), "sector 7") {
			t.Fatalf("%s: %d %s", c.path, r.status, r.body)
		}
		line := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "route="+c.route+" ") {
				line = l
			}
		}
		if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "status=500") || !strings.Contains(line, "sector 7") {
			t.Fatalf("no log line with the route and the cause for %s:\n%s", c.route, logs.String())
		}
	}
}

// TestWebhookLoopFailures: outbox errors are logged (once per streak), and
// retries follow the server's clock.
func TestWebhookLoopFailures(t *testing.T) {
	clk, cfg := clockConfig(t, time.Now())
	hook := startHookReceiver(t)
	hook.fail.Store(1)
	cfg.Webhook = Webhook{URL: hook.url, Secret: "s3cret", MaxBackoff: Duration(time.Hour)}
	fs := &failingStore{Store: cfg.Store}
	cfg.Store = fs
	logs := &testbin.Buffer{}
	cfg.Logger = logs.Logger()
	fs.claim.Store(true)
	o := startOrigin(t, cfg)
	waitFor(t, 10*time.Second, "a logged claim failure", func() bool {
		return strings.Contains(logs.String(), "claim failed") && strings.Contains(logs.String(), "sector 7")
	})
	n0 := fs.claims.Load()
	waitFor(t, 10*time.Second, "more failing claims", func() bool { return fs.claims.Load() >= n0+3 })
	if n := strings.Count(logs.String(), "claim failed"); n != 1 {
		t.Fatalf("claim failure logged %d times, want once per streak", n)
	}
	fs.claim.Store(false)
	o.create(nil)
	// The first delivery fails; the retry waits for the backoff (about a
	// second) on the server's clock, which stands still: the entry is
	// claimed again when its lease lapses, and skipped.
	waitFor(t, 10*time.Second, "a failed delivery", func() bool { return hook.fail.Load() == 0 })
	c0 := fs.claimed.Load()
	waitFor(t, 10*time.Second, "the failed entry claimed twice more", func() bool { return fs.claimed.Load() >= c0+2 })
	hook.mu.Lock()
	delivered := len(hook.events)
	hook.mu.Unlock()
	if delivered != 0 {
		t.Fatal("the retry did not wait for the server's clock")
	}
	fs.done.Store(true)
	clk.add(time.Minute)
	waitFor(t, 10*time.Second, "the retried delivery", func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return len(hook.events) >= 1
	})
	waitFor(t, 10*time.Second, "a logged outbox removal failure", func() bool {
		return strings.Contains(logs.String(), "not removed")
	})
	if !strings.Contains(logs.String(), "webhook delivery refused") || strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("log:\n%s", logs.String())
	}
}
