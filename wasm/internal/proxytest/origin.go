//go:build !wasip1

package proxytest

import (
	"strconv"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// Origin is a fake origin that speaks the edge-facing part of the contract
// in /work/contracts.md: sessions by id (CBOR), the sync feed, touch
// reports, self-service writes and logout. Cursors are decimal log offsets.
type Origin struct {
	Now      time.Time
	APIKey   string
	Sessions map[wire.ID]*wire.Session
	Log      []wire.Delta
	Touches  []wire.Touch
	Requests []string // "METHOD path" of every call served
	Polls    int
	// ResetNext makes the next sync answer a reset, as for a cursor that
	// fell out of retention.
	ResetNext bool
}

// NewOrigin returns an empty origin whose clock starts at now.
func NewOrigin(now time.Time) *Origin {
	return &Origin{Now: now, Sessions: map[wire.ID]*wire.Session{}}
}

func (o *Origin) ms() int64 { return o.Now.UnixMilli() }

// Write applies ops to session id as one delta, creating it (anonymous,
// generation 1) if needed, and appends the delta to the feed.
func (o *Origin) Write(id wire.ID, ops ...wire.Op) (*wire.Session, error) {
	s := o.Sessions[id]
	var base uint64
	if s != nil {
		base = s.Version
	} else {
		ops = append([]wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1}}, ops...)
	}
	d := wire.Delta{ID: id, BaseVersion: base, Version: base + 1, At: o.ms(), Ops: ops}
	next, err := wire.Apply(s, &d, &wire.DefaultLimits)
	if err != nil {
		return nil, err
	}
	o.Sessions[id] = next
	o.Log = append(o.Log, d)
	return next, nil
}

// Handle answers one call and returns the status and body.
func (o *Origin) Handle(c *abi.MockCall) (int, []byte) {
	method, path := c.Header(":method"), c.Header(":path")
	o.Requests = append(o.Requests, method+" "+path)
	if o.APIKey != "" && c.Header("authorization") != "Bearer "+o.APIKey {
		return 401, []byte(`{"error":{"code":"unauthorized","message":"bad key"}}`)
	}
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	switch {
	case method == "GET" && path == "/v1/sync":
		return o.sync(query)
	case method == "POST" && path == "/v1/sync/touch":
		return o.touch(c.Body)
	case strings.HasPrefix(path, "/v1/sessions/"):
		rest := strings.TrimPrefix(path, "/v1/sessions/")
		idText, sub, _ := strings.Cut(rest, "/")
		id, err := wire.ParseID(idText)
		if err != nil {
			return 400, nil
		}
		return o.session(method, id, sub, c.Body)
	}
	return 404, nil
}

func (o *Origin) sync(query string) (int, []byte) {
	o.Polls++
	after := -1
	for _, kv := range strings.Split(query, "&") {
		if v, ok := strings.CutPrefix(kv, "after="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return 400, nil
			}
			after = n
		}
	}
	bt := wire.Batch{Cursor: strconv.Itoa(len(o.Log))}
	if after >= 0 {
		if after > len(o.Log) || o.ResetNext {
			o.ResetNext = false
			bt.Reset = true
		} else {
			bt.Deltas = o.Log[after:]
		}
	}
	return 200, wire.AppendBatch(nil, &bt)
}

func (o *Origin) touch(body []byte) (int, []byte) {
	ts, err := wire.DecodeTouches(body, nil)
	if err != nil {
		return 400, nil
	}
	o.Touches = append(o.Touches, ts...)
	for _, t := range ts {
		if o.Sessions[t.ID] == nil {
			d := wire.Delta{ID: t.ID, Version: 1, At: o.ms(), Ops: []wire.Op{{Code: wire.OpStart, Kind: t.Kind,
				Generation: t.Generation, Idle: t.IdleDeadline, Hard: t.HardDeadline}}}
			s, err := wire.Apply(nil, &d, &wire.DefaultLimits)
			if err == nil {
				o.Sessions[t.ID] = s
				o.Log = append(o.Log, d)
			}
		}
	}
	return 204, nil
}

func (o *Origin) session(method string, id wire.ID, sub string, body []byte) (int, []byte) {
	s := o.Sessions[id]
	if s != nil && s.Ended != 0 {
		return 410, []byte(`{"error":{"code":"gone","message":"session ended"}}`)
	}
	switch {
	case method == "GET" && sub == "":
		if s == nil {
			return 404, []byte(`{"error":{"code":"not_found","message":"no such session"}}`)
		}
		return 200, wire.AppendSession(nil, s)
	case method == "PATCH" && sub == "context":
		v, err := wire.ParseValueJSON(body)
		if err != nil {
			return 400, nil
		}
		ops, err := wire.ContextOps(v, false, &wire.DefaultLimits)
		if err != nil {
			return 400, []byte(`{"error":{"code":"invalid_input","message":"bad patch"}}`)
		}
		return o.write(id, ops)
	case method == "DELETE" && strings.HasPrefix(sub, "attributes/public/"):
		return o.write(id, []wire.Op{{Code: wire.OpDeleteAttr, NS: wire.NamespacePublic, Key: strings.TrimPrefix(sub, "attributes/public/")}})
	case method == "POST" && sub == "logout":
		if s == nil {
			return 404, nil
		}
		return o.write(id, []wire.Op{{Code: wire.OpLogout, Generation: s.Generation + 1}})
	}
	return 405, nil
}

func (o *Origin) write(id wire.ID, ops []wire.Op) (int, []byte) {
	s, err := o.Write(id, ops...)
	if err != nil {
		return 400, []byte(`{"error":{"code":"invalid_input","message":"` + strings.ReplaceAll(err.Error(), `"`, `'`) + `"}}`)
	}
	return 200, wire.AppendSession(nil, s)
}
