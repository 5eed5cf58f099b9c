package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Peer is one of a customer's live sessions as its owner may see it, for a
// "your devices" page: when it started and was last used, and the devices
// an edge saw. It carries a handle, never the session id: the id would let
// whoever reads the list act for that session.
type Peer struct {
	// Handle tells the sessions of a list apart: 16 hex characters of
	// SHA-256 of the session id, stable for a session.
	Handle string
	// Current marks the session the list was asked for.
	Current  bool
	Kind     wire.Kind
	Created  time.Time
	LastSeen time.Time
	Modified time.Time
	// FirstDevice is the client an edge saw when the session started,
	// Device the one it saw last; zero when no edge reported one.
	FirstDevice, Device wire.Device
}

type peerJSON struct {
	seenJSON
	Handle  string `json:"handle"`
	Current bool   `json:"current"`
}

// ParsePeers decodes the body of the origin's GET /v1/sessions/{id}/peers,
// which the edge's self-service endpoint ({prefix}sessions) answers as is.
func ParsePeers(data []byte) ([]Peer, error) {
	var body struct {
		Sessions []peerJSON `json:"sessions"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, err
	}
	out := make([]Peer, 0, len(body.Sessions))
	for _, j := range body.Sessions {
		p := Peer{Handle: j.Handle, Current: j.Current}
		if err := j.seenJSON.parse(&p.Kind, &p.Created, &p.LastSeen, &p.Modified, &p.FirstDevice, &p.Device); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Peers lists the sessions of the customer that session id is logged in
// as, id itself marked Current, for a "your devices" page; an anonymous
// session's list holds only itself. It needs the sessions:read scope and
// takes WithToken. The shopper reaches the same list through the edge's
// self-service endpoint ({prefix}sessions, by default /.session/sessions).
func (c *Client) Peers(ctx context.Context, id string, opts ...WriteOption) ([]Peer, error) {
	r, err := c.prepare("Peers", id, takesToken, opts, request{method: http.MethodGet, path: sessionPath(id, "peers")})
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, r, &raw); err != nil {
		return nil, err
	}
	peers, err := ParsePeers(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", errDecode, r.path, err)
	}
	return peers, nil
}

// EndPeers ends every other session of the customer that session id is
// logged in as ("log out my other devices"), each with reason "revoked",
// and returns how many it ended; id itself stays. For an anonymous session
// it ends nothing. It needs the sessions:write scope and takes WithToken.
// The shopper does the same through the edge's self-service endpoint
// (DELETE {prefix}sessions/others).
func (c *Client) EndPeers(ctx context.Context, id string, opts ...WriteOption) (int, error) {
	r, err := c.prepare("EndPeers", id, takesToken, opts, request{method: http.MethodDelete, path: sessionPath(id, "peers")})
	if err != nil {
		return 0, err
	}
	var out struct {
		Revoked int `json:"revoked"`
	}
	if err := c.do(ctx, r, &out); err != nil {
		return 0, err
	}
	return out.Revoked, nil
}
