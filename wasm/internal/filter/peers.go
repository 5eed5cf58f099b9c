package filter

import (
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// The shopper's sessions (self-service "sessions" and "sessions/others"):
// the list of the customer's live sessions and "log out my other
// devices", answered by the origin (GET and DELETE
// /v1/sessions/{id}/peers), which checks the client's token and its
// generation.

// maxPeersBody bounds the origin's answer passed on to the client.
const maxPeersBody = 256 << 10

// startPeers asks the origin for the customer's sessions (GET) or to end
// every other one (DELETE), presenting the client's token.
func (p *Plugin) startPeers(s *stream) abi.Action {
	ok, probe := p.breakerAllow(s.nowMs)
	if !ok {
		p.counters.BreakerRefused++
		return p.replyError(s, 503, "unavailable", "origin unavailable")
	}
	method := "GET"
	if s.self == selfRevoke {
		method = "DELETE"
	}
	c := &call{kind: callPeers, id: s.claims.ID, gen: s.claims.Generation, probe: probe, streams: []*stream{s},
		accept: "application/json"}
	if !p.send(method, p.sessionPath(s.claims.ID, "/peers"), "", nil, s.tok, c, s.id) {
		p.breakerRecord(false, probe, s.nowMs)
		return p.replyError(s, 503, "unavailable", "origin unreachable")
	}
	s.waiting = c
	return abi.ActionPause
}

// peersAnswered passes the origin's answer on. A session the origin does
// not know yet (an edge-minted token that came back before the first
// report) has no other sessions: the list holds it alone, and there is
// nothing to revoke. After a revoke that reports the session's version
// (the answer's "version"), the client gets a consistency hint for it.
func (p *Plugin) peersAnswered(c *call, status int, body []byte, nowMs int64) {
	if len(c.streams) == 0 {
		return
	}
	s := c.streams[0]
	s.waiting = nil
	s.nowMs = nowMs
	abi.SetEffectiveContext(s.id)
	if status == 404 && s.claims.Kind == wire.KindAnonymous && s.claims.Generation == 1 {
		if s.self == selfRevoke {
			s.out = append(s.out[:0], `{"revoked":0}`...)
		} else {
			s.out = p.appendOnlySession(s.out[:0], s)
		}
		p.reply(s, 200, "sessionedge_sessions", s.out)
		return
	}
	if status != 200 {
		p.replyOriginError(s, status, body, nowMs)
		return
	}
	var v wire.Value
	err := wire.ErrTooLarge
	if len(body) <= maxPeersBody {
		v, err = wire.ParseValueJSON(body)
	}
	if err != nil || v.Type != wire.TypeMap {
		logf(abi.LogWarn, "unreadable sessions answer from the origin")
		p.replyError(s, 502, "bad_gateway", "unreadable answer from the origin")
		return
	}
	if s.self == selfRevoke {
		if ver, ok := v.Map.Get("version"); ok && ver.Type == wire.TypeInt && ver.Int > 0 {
			p.noteWritten(s, uint64(ver.Int))
		}
	}
	s.out = append(s.out[:0], body...)
	p.reply(s, 200, "sessionedge_sessions", s.out)
}

// appendOnlySession appends the session list of a session the origin does
// not know yet: the current one, as far as this edge knows it.
func (p *Plugin) appendOnlySession(dst []byte, s *stream) []byte {
	created, lastSeen := s.nowMs, s.nowMs
	if e := p.sessions.peek(s.claims.ID); e != nil && e.sess.Created != 0 {
		created = e.sess.Created
	}
	dst = append(dst, `{"sessions":[{"current":true,"kind":"anonymous","created":`...)
	dst = wire.AppendTimeJSON(dst, created)
	dst = append(dst, `,"lastSeen":`...)
	dst = wire.AppendTimeJSON(dst, lastSeen)
	if dev := p.device(s); dev != nil {
		dst = append(dst, `,"device":{"userAgent":`...)
		dst = wire.AppendStringJSON(dst, dev.UserAgent)
		dst = wire.AppendStringJSON(append(dst, `,"addr":`...), dev.Addr)
		dst = append(wire.AppendStringJSON(append(dst, `,"site":`...), dev.Site), '}')
	}
	dst = append(dst, `,"handle":"`...)
	dst = appendHandle(dst, s.claims.ID)
	return append(dst, `"}]}`...)
}

// appendHandle appends the handle the origin shows for a session instead
// of its id: 16 hex characters of SHA-256 over the id's 16 bytes.
func appendHandle(dst []byte, id wire.ID) []byte {
	sum := wire.Sum256(id[:])
	const digits = "0123456789abcdef"
	for _, c := range sum[:8] {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}
