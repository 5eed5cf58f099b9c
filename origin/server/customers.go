package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// liveCustomerSessions returns the sessions logged in as cid that are
// live at now (not ended, no deadline passed).
// With fresh, each session is read from the backend, not from a cached
// copy that may be older (another node's write).
func (s *Server) liveCustomerSessions(cid string, now int64, fresh bool) ([]*wire.Session, error) {
	ids, err := s.st.CustomerSessions(s.base, cid)
	if err != nil {
		return nil, err
	}
	var min uint64
	if fresh {
		min = math.MaxUint64 // newer than any cached copy: the backend answers
	}
	var out []*wire.Session
	for _, id := range ids {
		sess, err := s.st.GetAtLeast(s.base, id, min)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if sess.Ended != 0 || sess.CustomerID() != cid || sess.Kind != wire.KindCustomer ||
			(sess.HardDeadline != 0 && now >= sess.HardDeadline) || (sess.IdleDeadline != 0 && now >= sess.IdleDeadline) {
			continue
		}
		out = append(out, sess)
	}
	return out, nil
}

// endCustomerSession ends session id with reason if it is still logged in
// as cid; it reports whether it did.
func (s *Server) endCustomerSession(id wire.ID, cid string, reason wire.EndReason) (bool, error) {
	ended := false
	_, _, err := s.write(change{id: id, ifMatch: -1, ops: func(base *wire.Session, _ int64) ([]wire.Op, error) {
		if ended = base.CustomerID() == cid; !ended {
			return nil, nil // logged out or in as someone else since the index was read
		}
		return []wire.Op{{Code: wire.OpEnd, Reason: reason}}, nil
	}})
	switch {
	case err == nil:
		return ended, nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errGone):
		return false, nil
	}
	return false, err
}

// endCustomerSessions ends every session of cid but except (the zero id:
// none) with reason and returns how many it ended; edges learn it from the
// feed.
func (s *Server) endCustomerSessions(cid string, except wire.ID, reason wire.EndReason) (int, error) {
	ids, err := s.st.CustomerSessions(s.base, cid)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if id == except {
			continue
		}
		ended, err := s.endCustomerSession(id, cid, reason)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}

// customerLock returns the lock that serializes, on this node, the logins
// of customer cid while customerSessions.max is set (nil otherwise): the
// limit check, the commit and the re-check or eviction after it run under
// it, so logins racing on one node cannot pass the limit. It is taken before
// any session lock, never while one is held.
func (s *Server) customerLock(cid string) *sync.Mutex {
	if s.cfg.CustomerSessions.Max <= 0 {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(cid))
	return &s.customerLocks[h.Sum32()%uint32(len(s.customerLocks))]
}

// lockCustomer takes customerLock(cid) and returns its unlock (a no-op
// without a limit).
func (s *Server) lockCustomer(cid string) func() {
	mu := s.customerLock(cid)
	if mu == nil {
		return func() {}
	}
	mu.Lock()
	return mu.Unlock
}

// refuseOverLimit refuses a login of session id as cid that would pass
// customerSessions.max when onLimit is "refuse". It reports whether id
// already counts against the limit (logged in as cid), so a login again
// takes no second slot. The caller holds lockCustomer(cid); logins on other
// origin nodes sharing the store are caught by overLimitAfter.
func (s *Server) refuseOverLimit(cid string, id wire.ID) (counted bool, err error) {
	cs := s.cfg.CustomerSessions
	if cs.Max <= 0 || cs.OnLimit != OnLimitRefuse {
		return false, nil
	}
	live, err := s.liveCustomerSessions(cid, s.nowMS(), false)
	if err != nil {
		return false, err
	}
	others := 0
	for _, sess := range live {
		if sess.ID != id {
			others++
		} else {
			counted = true
		}
	}
	if others >= cs.Max {
		return counted, errSessionLimit
	}
	return counted, nil
}

// overLimitAfter reports, after a login of a session as cid committed in
// refuse mode, whether cid now holds more than customerSessions.max live
// sessions, read from the backend (not the cache): logins that raced on
// other origin nodes sharing the store each see the others here, and the
// caller undoes its login. The last of any racing logins to commit sees
// them all, so the logins that stand never pass the limit (racing ones may
// all be refused).
func (s *Server) overLimitAfter(cid string) (bool, error) {
	cs := s.cfg.CustomerSessions
	if cs.Max <= 0 || cs.OnLimit != OnLimitRefuse {
		return false, nil
	}
	live, err := s.liveCustomerSessions(cid, s.nowMS(), true)
	if err != nil {
		return false, err
	}
	return len(live) > cs.Max, nil
}

// undoLogin logs session id out again after its login as cid (at
// generation gen) passed the limit, unless it changed since.
func (s *Server) undoLogin(id wire.ID, cid string, gen uint32) error {
	_, _, err := s.write(change{id: id, ifMatch: -1, ops: func(base *wire.Session, now int64) ([]wire.Op, error) {
		if base.CustomerID() != cid || base.Generation != gen {
			return nil, nil
		}
		return s.logoutOps(base, now), nil
	}})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errGone) {
		return nil
	}
	return err
}

// evictOverLimit ends the oldest sessions of cid (by start) but the one
// that just logged in, id, until cid holds customerSessions.max, when
// onLimit is "evictOldest" (the default). Each ends with EndEvicted, which
// reaches the edges through the feed and receivers as session.ended with
// reason evicted. The login stands whatever happens here: a failure is
// logged, and the next login evicts again.
func (s *Server) evictOverLimit(cid string, id wire.ID) {
	cs := s.cfg.CustomerSessions
	if cs.Max <= 0 || cs.OnLimit == OnLimitRefuse {
		return
	}
	live, err := s.liveCustomerSessions(cid, s.nowMS(), true)
	if err != nil {
		s.log.Error("session limit: cannot list the customer's sessions", "session", id.String(), "err", err)
		return
	}
	others := live[:0:0]
	for _, sess := range live {
		if sess.ID != id {
			others = append(others, sess)
		}
	}
	sort.Slice(others, func(i, j int) bool {
		if others[i].Created != others[j].Created {
			return others[i].Created < others[j].Created
		}
		return string(others[i].ID[:]) < string(others[j].ID[:])
	})
	for i := 0; i <= len(others)-cs.Max; i++ {
		if _, err := s.endCustomerSession(others[i].ID, cid, wire.EndEvicted); err != nil {
			s.log.Error("session limit: cannot evict a session", "session", others[i].ID.String(), "err", err)
		}
	}
}

func (s *Server) handleCustomerSessions(ctx *fasthttp.RequestCtx, p params, _ access) error {
	cid, err := p.text(0)
	if err != nil {
		return err
	}
	ids, err := s.st.CustomerSessions(s.base, cid)
	if err != nil {
		return err
	}
	b := append(make([]byte, 0, 512), `{"sessions":[`...)
	n := 0
	for _, id := range ids {
		sess, err := s.st.Get(s.base, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if sess.Ended != 0 || sess.CustomerID() != cid {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = wire.AppendSessionJSON(b, sess, wire.AllNamespaces)
		n++
	}
	b = append(b, "]}"...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	return nil
}

// handleRevokeCustomer ends every session of a customer with EndRevoked;
// edges learn it from the feed.
func (s *Server) handleRevokeCustomer(ctx *fasthttp.RequestCtx, p params, _ access) error {
	cid, err := p.text(0)
	if err != nil {
		return err
	}
	n, err := s.endCustomerSessions(cid, wire.ID{}, wire.EndRevoked)
	if err != nil {
		return err
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"revoked":` + strconv.Itoa(n) + `}`)
	return nil
}

// peerSession reads the session in the path for the peers routes: live,
// and of the presented token's generation.
func (s *Server) peerSession(ctx *fasthttp.RequestCtx, p params, a access) (*wire.Session, error) {
	id, tok, err := s.pathToken(ctx, p, a, false)
	if err != nil {
		return nil, err
	}
	return s.readFor(id, 0, tok)
}

// handlePeers lists the sessions of the session's customer (for a session
// that is not logged in: itself), the current one first, then by last
// activity: what a shopper's "your devices" page shows. No id leaves: each
// session has a handle, the first 8 bytes of SHA-256(id) in hex.
func (s *Server) handlePeers(ctx *fasthttp.RequestCtx, p params, a access) error {
	sess, err := s.peerSession(ctx, p, a)
	if err != nil {
		return err
	}
	var others []*wire.Session
	if sess.Kind == wire.KindCustomer {
		live, err := s.liveCustomerSessions(sess.CustomerID(), s.nowMS(), false)
		if err != nil {
			return err
		}
		for _, o := range live {
			if o.ID != sess.ID {
				others = append(others, o)
			}
		}
		sort.Slice(others, func(i, j int) bool { return others[i].LastSeen > others[j].LastSeen })
	}
	b := append(make([]byte, 0, 256*(1+len(others))), `{"sessions":[`...)
	b = appendPeer(b, sess, true)
	for _, o := range others {
		b = appendPeer(append(b, ','), o, false)
	}
	b = append(b, "]}"...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	return nil
}

// sessionHandle names a session without giving its id away.
func sessionHandle(id wire.ID) string {
	sum := sha256.Sum256(id[:])
	return hex.EncodeToString(sum[:8])
}

func appendPeer(b []byte, sess *wire.Session, current bool) []byte {
	b = strconv.AppendBool(append(b, `{"current":`...), current)
	b = append(append(append(b, `,"kind":"`...), sess.Kind.String()...), '"')
	for _, t := range [...]struct {
		name string
		v    int64
	}{{"created", sess.Created}, {"lastSeen", sess.LastSeen}, {"modified", sess.Modified}} {
		if t.v != 0 {
			b = wire.AppendTimeJSON(append(append(append(b, `,"`...), t.name...), `":`...), t.v)
		}
	}
	for _, d := range [...]struct {
		name string
		dev  wire.Device
	}{{"firstDevice", sess.FirstDevice}, {"device", sess.Device}} {
		if !d.dev.IsZero() {
			b = append(append(append(b, `,"`...), d.name...), `":{"userAgent":`...)
			b = wire.AppendStringJSON(b, d.dev.UserAgent)
			b = wire.AppendStringJSON(append(b, `,"addr":`...), d.dev.Addr)
			b = append(wire.AppendStringJSON(append(b, `,"site":`...), d.dev.Site), '}')
		}
	}
	b = append(append(b, `,"handle":"`...), sessionHandle(sess.ID)...)
	return append(b, `"}`...)
}

// handleRevokePeers ends every other session of the session's customer
// (EndRevoked): "log out my other devices". A session that is not logged
// in has none.
func (s *Server) handleRevokePeers(ctx *fasthttp.RequestCtx, p params, a access) error {
	sess, err := s.peerSession(ctx, p, a)
	if err != nil {
		return err
	}
	n := 0
	if sess.Kind == wire.KindCustomer {
		if n, err = s.endCustomerSessions(sess.CustomerID(), sess.ID, wire.EndRevoked); err != nil {
			return err
		}
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"revoked":` + strconv.Itoa(n) + `}`)
	return nil
}

// handleFlush sends a session.flushed event with the session's current
// state, without changing or ending it (a pending session.changed goes
// first). Without a webhook URL nothing is sent. The answer is the
// session, as a GET's.
func (s *Server) handleFlush(ctx *fasthttp.RequestCtx, p params, a access) error {
	id, tok, err := s.pathToken(ctx, p, a, false)
	if err != nil {
		return err
	}
	mu := s.sessionLock(id)
	mu.Lock()
	defer mu.Unlock()
	var minVersion uint64
	for attempt := 0; attempt < 100; attempt++ {
		sess, err := s.readFor(id, minVersion, tok)
		if err != nil {
			return err
		}
		if s.cfg.Webhook.URL != "" {
			e := store.Emission{ID: id, Version: sess.Version, Pending: changedBody(sess), Outbox: [][]byte{flushedBody(sess, s.nowMS())}}
			err := s.st.Emit(s.base, []store.Emission{e})[0]
			if errors.Is(err, store.ErrConflict) {
				minVersion = sess.Version + 1 // another node wrote it meanwhile
				continue
			}
			if err != nil {
				return err
			}
		}
		s.writeSession(ctx, sess, fasthttp.StatusOK, a)
		return nil
	}
	return errTooManyRetries
}
