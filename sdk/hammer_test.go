package sdk_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestClientHammer(t *testing.T) { bothOrigins(t, hammer) }

// hammer has many goroutines share one client and increment one counter
// with read-modify-write under If-Match: every increment must land exactly
// once, however often the writes collide.
func hammer(t *testing.T, url string) {
	ctx := context.Background()
	c := newClient(t, url, "app-key")
	created, err := c.Create(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Session.ID
	const workers, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conflicts int
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					s, err := c.Get(ctx, id, "custom.n")
					if err != nil {
						errs <- err
						return
					}
					n, _ := s.Attr(wire.NamespaceCustom, "n")
					_, err = c.Patch(ctx, id, new(sdk.Patch).Set(wire.NamespaceCustom, "n", wire.Int(n.Int+1)), sdk.IfMatch(s.Version))
					if errors.Is(err, sdk.ErrPreconditionFailed) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Attr(wire.NamespaceCustom, "n"); n.Int != workers*each {
		t.Fatalf("counter %d after %d increments (%d conflicts retried)", n.Int, workers*each, conflicts)
	}
	t.Logf("%d increments, %d conflicts retried", workers*each, conflicts)
}
