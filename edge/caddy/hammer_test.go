package caddy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestHandlerHammer sends many requests at once through one handler (run it
// with -race): plain, answered by the filter, trapping the filter (failing
// open), with bodies both ways that stream past the write buffer, with the
// chain failing, and with clients that give up in the middle of a body.
// Every request must get its own answer.
func TestHandlerHammer(t *testing.T) {
	h := &Handler{Wasm: watWasm, VMs: 2, FailOpen: true}
	provision(t, h)
	big := strings.Repeat("b", 3*bufferLimit)
	s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
		id := r.Header.Get("X-Id")
		switch r.URL.Path {
		case "/echo":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s:%d", id, len(b))
			return err
		case "/big":
			for i := 0; i < len(big); i += 1000 {
				if _, err := io.WriteString(w, big[i:min(i+1000, len(big))]); err != nil {
					return err
				}
			}
			return nil
		case "/fail":
			return caddyhttp.Error(http.StatusTeapot, errors.New("no"))
		}
		_, err := io.WriteString(w, id)
		return err
	})
	const workers, each = 16, 40
	var wg sync.WaitGroup
	errc := make(chan error, workers*each)
	for g := 0; g < workers; g++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("%d-%d", g, i)
				if err := hammerOnce(s.URL, id, i%7, big); err != nil {
					errc <- fmt.Errorf("request %s (kind %d): %w", id, i%7, err)
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func hammerOnce(base, id string, kind int, big string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	method, path, body := http.MethodGet, "/", io.Reader(nil)
	want, wantStatus := id, http.StatusOK
	switch kind {
	case 1:
		path, want, wantStatus = "/local", "forbidden", http.StatusForbidden
	case 2:
		path = "/trap" // fails open: next answers
	case 3:
		method, path, body, want = http.MethodPost, "/echo", strings.NewReader(big), fmt.Sprintf("%s:%d", id, len(big))
	case 4:
		path, want = "/big", big
	case 5:
		path, want, wantStatus = "/fail", "", http.StatusTeapot
	case 6:
		// The client reads a little of a long body, then goes away.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/big", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		buf := make([]byte, 100)
		_, err = io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, method, base+path, body)
	req.Header.Set("X-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if kind == 1 && resp.StatusCode == http.StatusOK && string(got) == id {
		// The traps of other requests left no healthy VM for a moment
		// (a VM is replaced a second later): failing open forwarded it.
		return nil
	}
	if resp.StatusCode != wantStatus || string(got) != want {
		return fmt.Errorf("got %d %.40q, want %d %.40q", resp.StatusCode, got, wantStatus, want)
	}
	return nil
}
