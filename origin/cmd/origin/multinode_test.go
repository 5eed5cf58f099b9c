package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/origin/internal/eventually"
	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestThreeNodesOverRedisCluster runs three origin processes over one Redis
// Cluster of three masters: writes go through one node, reads and the sync
// feed through the others. Every delta reaches an edge cursor exactly once
// and in per-session order, whichever node serves each page, and a
// revoke-all through one node reaches an edge polling another.
func TestThreeNodesOverRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3, redistest.Options{})
	var urls []string
	for _, a := range cluster.Addrs() {
		urls = append(urls, "redis://"+a)
	}
	bin := buildOrigin(t)
	dir := t.TempDir()
	cfg := map[string]any{
		"redis":        map[string]any{"urls": urls, "shards": 8},
		"apiKeys":      []map[string]any{{"name": "t", "key": crashKey, "scopes": []string{"sessions:read", "sessions:write", "sessions:admin", "edge:sync"}}},
		"tokenKeys":    map[string]string{"1": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))},
		"sharedSecret": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)),
	}
	cfgPath := writeConfig(t, dir, cfg)
	var nodes []string
	for i := 0; i < 3; i++ {
		addr := testbin.FreeAddr(t)
		startBinary(t, bin, cfgPath, addr, nil)
		nodes = append(nodes, "http://"+addr)
	}
	writer, reader, syncer := nodes[0], nodes[1], nodes[2]
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, url, body string, want int) map[string]any {
		t.Helper()
		status, b, err := call(client, method, url, []byte(body), "")
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %v %s", method, url, status, err, b)
		}
		var out map[string]any
		json.Unmarshal(b, &out)
		return out
	}
	cursor := syncBatch(t, syncer[len("http://"):], "").Cursor

	// Writes through node 0: sessions patched several times, two of them
	// logged in as one customer.
	const sessions, patches = 12, 4
	var ids []string
	for i := 0; i < sessions; i++ {
		id := do("POST", writer+"/v1/sessions", `{"context":{"currency":"EUR"}}`, 201)["id"].(string)
		ids = append(ids, id)
		for p := 0; p < patches; p++ {
			do("PATCH", writer+"/v1/sessions/"+id+"/context", fmt.Sprintf(`{"custom":{"n":%d}}`, p), 200)
		}
	}
	for _, id := range ids[:2] {
		do("POST", writer+"/v1/sessions/"+id+"/login", `{"customerId":"c-multi"}`, 200)
	}
	// Reads through node 1 see what node 0 wrote.
	for _, id := range ids {
		s := do("GET", reader+"/v1/sessions/"+id, "", 200)
		if s["version"].(float64) < 1+patches {
			t.Fatalf("node 1 serves %s at version %v", id, s["version"])
		}
	}
	list := do("GET", reader+"/v1/customers/c-multi/sessions", "", 200)
	if b, _ := json.Marshal(list); !bytes.Contains(b, []byte(ids[0])) || !bytes.Contains(b, []byte(ids[1])) {
		t.Fatalf("node 1 lists the customer's sessions as %s", b)
	}
	// Revoke-all through node 0.
	do("DELETE", writer+"/v1/customers/c-multi/sessions", "", 200)

	// The edge follows the feed, alternating between nodes 1 and 2 with the
	// same cursor, until it has every delta.
	want := sessions*(1+patches) + 2 /* logins */ + 2 /* revocations */
	seen := map[string]uint64{}
	revoked := map[string]bool{}
	total := 0
	page := 0
	eventually.True(t, 15*time.Second, "the whole feed", func() bool {
		if total >= want {
			return true
		}
		node := []string{reader, syncer}[page%2]
		page++
		bt := syncBatch(t, node[len("http://"):], cursor)
		if bt.Reset {
			t.Fatal("feed reset while following it")
		}
		for _, d := range bt.Deltas {
			id := d.ID.String()
			if d.BaseVersion != seen[id] {
				t.Fatalf("delta %s %d→%d after version %d: repeated, missed or out of order", id, d.BaseVersion, d.Version, seen[id])
			}
			seen[id] = d.Version
			total++
			for _, op := range d.Ops {
				if op.Code == wire.OpEnd && op.Reason == wire.EndRevoked {
					revoked[id] = true
				}
			}
		}
		cursor = bt.Cursor
		return total >= want
	})
	if total != want {
		t.Fatalf("feed delivered %d deltas, want %d", total, want)
	}
	if !revoked[ids[0]] || !revoked[ids[1]] || len(revoked) != 2 {
		t.Fatalf("revocations seen by the edge: %v", revoked)
	}
	// Nothing more: a page at the end is empty on every node.
	for _, node := range nodes {
		if bt := syncBatch(t, node[len("http://"):], cursor); len(bt.Deltas) != 0 || bt.Reset {
			t.Fatalf("%s has %d more deltas (reset %v) after the end", node, len(bt.Deltas), bt.Reset)
		}
	}
	// A revoked session is gone on every node.
	for _, node := range nodes {
		status, _, err := call(client, "GET", node+"/v1/sessions/"+ids[0], nil, "")
		if err != nil || status != http.StatusGone {
			t.Fatalf("%s serves a revoked session with %d %v", node, status, err)
		}
	}
}
