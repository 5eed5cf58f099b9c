package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/origin/internal/eventually"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

const crashKey = "crash-test-key"

// origin is a running origin binary.
type origin struct {
	*testbin.Process
	addr string
}

// startBinary starts the origin binary with config on addr (and a free
// admin address), env added to its environment and more flags, and waits
// until it is ready.
func startBinary(t *testing.T, bin, config, addr string, env []string, flags ...string) *origin {
	t.Helper()
	admin := testbin.FreeAddr(t)
	p := testbin.Start(t, testbin.Cmd{Name: "origin", Path: bin, Env: env,
		Args:  append([]string{"-config", config, "-listen", addr, "-admin", admin}, flags...),
		Ready: "http://" + admin + "/readyz"})
	return &origin{Process: p, addr: addr}
}

func call(client *http.Client, method, url string, body []byte, accept string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+crashKey)
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func syncBatch(t *testing.T, addr, after string) wire.Batch {
	t.Helper()
	url := "http://" + addr + "/v1/sync?limit=10"
	if after != "" {
		url += "&after=" + after
	}
	status, body, err := call(http.DefaultClient, "GET", url, nil, "application/cbor")
	if err != nil || status != 200 {
		t.Fatalf("sync: %d %v", status, err)
	}
	var bt wire.Batch
	if err := wire.DecodeBatch(body, &bt); err != nil {
		t.Fatal(err)
	}
	return bt
}

// TestCrashRecovery runs the origin binary under write load, kills it with
// SIGKILL, restarts it on the same data directory and checks that every
// acknowledged write survived, the sync cursor continues, and the webhooks
// owed before the crash are delivered after it.
func TestCrashRecovery(t *testing.T) {
	bin := buildOrigin(t)
	dir := t.TempDir()

	// The webhook receiver refuses everything until the restart, so the
	// start events of the first run are all still owed when the origin dies.
	var accept atomic.Bool
	var mu sync.Mutex
	started := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !accept.Load() {
			w.WriteHeader(503)
			return
		}
		var ev struct{ Type, ID string }
		json.NewDecoder(r.Body).Decode(&ev)
		if ev.Type == "session.started" {
			mu.Lock()
			started[ev.ID] = true
			mu.Unlock()
		}
		w.WriteHeader(204)
	}))
	t.Cleanup(hook.Close)

	cfg := map[string]any{
		"dataDir":   filepath.Join(dir, "data"),
		"apiKeys":   []map[string]any{{"name": "t", "key": crashKey, "scopes": []string{"sessions:read", "sessions:write", "edge:sync"}}},
		"tokenKeys": map[string]string{"1": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))},
		"webhook":   map[string]any{"url": hook.URL + "/", "secret": "x", "maxBackoff": "200ms"},
	}
	cfgPath := writeConfig(t, dir, cfg)

	addr := testbin.FreeAddr(t)
	o := startBinary(t, bin, cfgPath, addr, nil)
	base := "http://" + addr

	type write struct{ id, key string }
	var (
		ackMu   sync.Mutex
		created []string
		patched []write
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				status, body, err := call(client, "POST", base+"/v1/sessions", []byte(`{"context":{"currency":"EUR"}}`), "")
				if err != nil || status != 201 {
					continue
				}
				var cr struct{ ID string }
				json.Unmarshal(body, &cr)
				ackMu.Lock()
				created = append(created, cr.ID)
				ackMu.Unlock()
				for k := 0; k < 3 && !stop.Load(); k++ {
					key := fmt.Sprintf("w%d_%d_%d", w, i, k)
					status, _, err := call(client, "PATCH", base+"/v1/sessions/"+cr.ID+"/context",
						[]byte(`{"custom":{"`+key+`":1}}`), "")
					if err == nil && status == 200 {
						ackMu.Lock()
						patched = append(patched, write{cr.ID, key})
						ackMu.Unlock()
					}
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	cursor := syncBatch(t, addr, "").Cursor
	time.Sleep(500 * time.Millisecond)
	if err := o.Kill(); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	if len(created) < 10 || len(patched) < 10 {
		t.Fatalf("too little load before the crash: %d creates, %d patches", len(created), len(patched))
	}
	t.Logf("acknowledged before SIGKILL: %d creates, %d patches", len(created), len(patched))

	accept.Store(true)
	o = startBinary(t, bin, cfgPath, addr, nil)

	sessions := map[string]*wire.Session{}
	for _, id := range created {
		status, body, err := call(client, "GET", base+"/v1/sessions/"+id, nil, "application/cbor")
		if err != nil || status != 200 {
			t.Fatalf("acknowledged create %s lost: %d %v", id, status, err)
		}
		s := new(wire.Session)
		if err := wire.DecodeSession(body, s); err != nil {
			t.Fatal(err)
		}
		sessions[id] = s
	}
	for _, w := range patched {
		if _, ok := sessions[w.id].Attr(wire.NamespaceCustom, w.key); !ok {
			t.Fatalf("acknowledged patch %s of %s lost", w.key, w.id)
		}
	}

	bt := syncBatch(t, addr, cursor)
	if bt.Reset || len(bt.Deltas) == 0 {
		t.Fatalf("sync after restart from %s: reset %v, %d deltas", cursor, bt.Reset, len(bt.Deltas))
	}
	head := syncBatch(t, addr, "").Cursor
	if status, _, _ := call(client, "POST", base+"/v1/sessions", nil, ""); status != 201 {
		t.Fatalf("create after restart: %d", status)
	}
	next := syncBatch(t, addr, head)
	h, _ := strconv.ParseUint(head, 10, 64)
	n, _ := strconv.ParseUint(next.Cursor, 10, 64)
	if len(next.Deltas) != 1 || n <= h {
		t.Fatalf("cursor did not continue after %s: %+v", head, next)
	}

	eventually.True(t, 30*time.Second, "every owed start webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range created {
			if !started[id] {
				return false
			}
		}
		return true
	})
}
