package server

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The webhook event types.
const (
	eventStarted = "session.started"
	eventChanged = "session.changed"
	eventLogin   = "session.login"
	eventLogout  = "session.logout"
	eventFlushed = "session.flushed"
	eventEnded   = "session.ended"
)

// events fills in the webhook events a commit of d, from prev (nil: the
// session is created) to next, owes:
//
//   - a new session: session.started (and session.login when it is created
//     logged in);
//   - a login, a logout or an end: session.login, session.logout or
//     session.ended (with the reason and the final context, the state
//     before the end), each preceded by the session's pending
//     session.changed (Settle), which carries the state just before, so a
//     receiver sees the changes of a logged-in stretch before its logout;
//   - any other change of context or lifetime: a session.changed owed at
//     the end of the changed window (ChangeDue), which the store records
//     once per window, so a burst of writes costs one event and no write
//     of its own. Sweep sends it when the window ends.
//
// Device records and touches owe nothing.
func (s *Server) events(c *store.Commit, prev, next *wire.Session, d *wire.Delta) {
	if s.cfg.Webhook.URL == "" {
		return
	}
	var login, logout, context bool
	for _, op := range d.Ops {
		switch op.Code {
		case wire.OpLogin:
			login = true
		case wire.OpLogout:
			logout = true
		case wire.OpSetField, wire.OpSetAttr, wire.OpDeleteAttr, wire.OpClearNamespace, wire.OpLifetime:
			context = true
		}
	}
	ended := next.Ended != 0 && (prev == nil || prev.Ended == 0)
	if prev == nil {
		c.Outbox = append(c.Outbox, eventBody(eventStarted, next, next.Version, d.At))
		if login {
			c.Outbox = append(c.Outbox, eventBody(eventLogin, next, next.Version, d.At))
		}
		return
	}
	if login || logout || ended {
		c.Settle = changedBody(prev)
	}
	switch {
	case ended:
		c.Outbox = append(c.Outbox, endedBody(prev, next, d.At))
	case login:
		c.Outbox = append(c.Outbox, eventBody(eventLogin, next, next.Version, d.At))
	case logout:
		c.Outbox = append(c.Outbox, eventBody(eventLogout, next, next.Version, d.At))
	case context:
		c.ChangeDue = d.At + s.changedWindow
	}
}

// eventBody is the JSON of an event of type typ about sess at (Unix ms),
// caused by the delta that made version.
func eventBody(typ string, sess *wire.Session, version uint64, at int64) []byte {
	return appendEvent(typ, sess, version, at, "")
}

// changedBody is the session.changed event of sess: its state at the end
// of a changed window, at its last change.
func changedBody(sess *wire.Session) []byte {
	return appendEvent(eventChanged, sess, sess.Version, sess.Modified, "")
}

// flushedBody is the session.flushed event of sess at (Unix ms).
func flushedBody(sess *wire.Session, at int64) []byte {
	return appendEvent(eventFlushed, sess, sess.Version, at, "")
}

// endedBody is the session.ended event of an end from prev to next: the
// reason, and the final context (the state before the end).
func endedBody(prev, next *wire.Session, at int64) []byte {
	return appendEvent(eventEnded, prev, next.Version, at, next.Ended.String())
}

// appendEvent writes an event. Its id, "<session id>.<version>.<event>"
// (the type without "session."), is unique: no two events of one type
// describe one version (a flush of an unchanged session repeats the same
// event, and receivers may drop the repeat).
func appendEvent(typ string, sess *wire.Session, version uint64, at int64, reason string) []byte {
	b := append(make([]byte, 0, 512), `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","eventId":"`...)
	b = sess.ID.AppendText(b)
	b = strconv.AppendUint(append(b, '.'), version, 10)
	b = append(append(append(b, '.'), strings.TrimPrefix(typ, "session.")...), `","id":"`...)
	b = sess.ID.AppendText(b)
	b = append(b, `","at":`...)
	b = wire.AppendTimeJSON(b, at)
	if reason != "" {
		b = append(append(append(b, `,"reason":"`...), reason...), '"')
	}
	b = append(b, `,"session":`...)
	b = wire.AppendSessionJSON(b, sess, wire.AllNamespaces)
	return append(b, '}')
}

// eventSession returns the session id of an event body ("" if it has none
// where the origin writes it).
func eventSession(body []byte) string {
	const key = `","id":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// settleChanges sends the pending session.changed events whose window
// ended by now, each with the session's state at that moment, and returns
// how many it settled.
func (s *Server) settleChanges(now int64) (int, error) {
	done := 0
	for {
		due, err := s.st.ChangesDue(s.base, now+1, sweepBatch)
		if err != nil || len(due) == 0 {
			return done, err
		}
		es := make([]store.Emission, 0, len(due))
		for _, d := range due {
			e, err := s.settlement(d.ID, 0)
			if err != nil {
				return done, err
			}
			es = append(es, e)
		}
		progress := 0
		// A session written meanwhile is read again; one written over and
		// over waits for the next sweep.
		for attempt := 0; len(es) > 0 && attempt < 3; attempt++ {
			var again []store.Emission
			for i, err := range s.st.Emit(s.base, es) {
				switch {
				case err == nil, errors.Is(err, store.ErrNotFound):
					progress++
				case errors.Is(err, store.ErrConflict):
					e, err := s.settlement(es[i].ID, es[i].Version+1)
					if err != nil {
						return done + progress, err
					}
					again = append(again, e)
				default:
					return done + progress, err
				}
			}
			es = again
		}
		done += progress
		if len(due) < sweepBatch || progress == 0 {
			return done, nil
		}
	}
}

// settlement is the emission that settles id's pending change event: the
// session.changed of its state now (read at minVersion or later), none for
// an ended or unknown session or with webhooks off.
func (s *Server) settlement(id wire.ID, minVersion uint64) (store.Emission, error) {
	sess, err := s.read(id, minVersion)
	if errors.Is(err, store.ErrNotFound) {
		return store.Emission{ID: id}, nil
	}
	if err != nil {
		return store.Emission{}, err
	}
	e := store.Emission{ID: id, Version: sess.Version}
	if sess.Ended == 0 && s.cfg.Webhook.URL != "" {
		e.Pending = changedBody(sess)
	}
	return e, nil
}

type retryState struct {
	attempts int
	next     time.Time
	// seen is when a claim last handed the entry to this node.
	seen time.Time
}

// webhookLoop delivers outbox entries at least once: an entry leaves the
// outbox only after a 2xx answer; failures retry with exponential backoff
// and jitter, capped at Webhook.MaxBackoff. Retry state is in memory: after
// a restart every pending entry is tried again at once. It is kept only for
// entries still in the outbox: an entry this node retries comes back to it
// with every lapse of its lease, so the state of one no claim returned for
// several leases (delivered by another node sharing the store, or gone from
// the outbox otherwise) is dropped, and the state stays bounded by what is
// pending.
func (s *Server) webhookLoop() {
	defer s.bg.Done()
	timeout := s.cfg.Webhook.Timeout.Or(Duration(10 * time.Second)).Std()
	maxBackoff := s.cfg.Webhook.MaxBackoff.Or(Duration(5 * time.Minute)).Std()
	client := &http.Client{Timeout: timeout}
	secret := []byte(s.cfg.Webhook.Secret)
	retries := map[string]*retryState{}
	// blocked holds, per session id, the event of the session that failed
	// and waits for its retry.
	blocked := map[string]string{}
	// An entry this node claims stays leased to it for a short while; one
	// that failed is claimed again when the lease lapses and retried once its
	// backoff has passed. Origin nodes sharing a store share the work.
	lease := min(time.Second, maxBackoff)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	// Store errors are logged when they start and when they stop, not on
	// every tick.
	claimFailing := false
	// stale is how long retry state outlives the last claim of its entry.
	stale := 4*lease + time.Second
	for {
		backlog := 0
		complete := false
		for s.base.Err() == nil {
			es, err := s.st.OutboxClaim(s.base, 256, lease)
			if err != nil && s.base.Err() == nil {
				if !claimFailing {
					s.log.Error("webhook outbox: claim failed", "err", err)
				}
				claimFailing = true
				break
			}
			if claimFailing {
				s.log.Info("webhook outbox: claims work again")
				claimFailing = false
			}
			if len(es) == 0 {
				complete = true
				break
			}
			for _, e := range es {
				backlog++
				if r := retries[e.ID]; r != nil {
					r.seen = s.now()
				}
				// A session's events go out in order: while an earlier one
				// waits for a retry, the later ones wait too (for as long as
				// the earlier one is being retried here).
				sid := eventSession(e.Body)
				if b, ok := blocked[sid]; ok && b != e.ID {
					if r := retries[b]; r != nil && s.now().Before(r.next.Add(2*lease+time.Second)) {
						continue
					}
					delete(blocked, sid) // delivered elsewhere, or gone
				}
				r := retries[e.ID]
				if r != nil && s.now().Before(r.next) {
					continue
				}
				if s.deliver(client, secret, e.Body) {
					if blocked[sid] == e.ID {
						delete(blocked, sid)
					}
					if err := s.st.OutboxDone(s.base, e.ID); err != nil {
						if s.base.Err() == nil {
							s.log.Error("webhook outbox: delivered event not removed; it will be delivered again", "event", e.ID, "err", err)
						}
						continue
					}
					delete(retries, e.ID)
					backlog--
					continue
				}
				if r == nil {
					r = &retryState{seen: s.now()}
					retries[e.ID] = r
				}
				r.attempts++
				d := time.Duration(float64(time.Second) * float64(uint(1)<<min(r.attempts-1, 20)))
				d = min(d, maxBackoff)
				r.next = s.now().Add(d/2 + time.Duration(rand.Int64N(int64(d/2)+1)))
				s.metrics.webhookFailures.Inc()
				if sid != "" {
					blocked[sid] = e.ID
				}
			}
			if len(es) < 256 {
				complete = true
				break
			}
		}
		// After a pass the store answered in full, forget entries that left
		// the outbox other than through this node.
		if complete {
			cut := s.now().Add(-stale)
			for id, r := range retries {
				if r.seen.Before(cut) {
					delete(retries, id)
				}
			}
			for sid, id := range blocked {
				if retries[id] == nil {
					delete(blocked, sid)
				}
			}
		}
		s.retrying.Store(int64(len(retries)))
		s.metrics.webhookBacklog.Set(float64(backlog))
		select {
		case <-s.base.Done():
			return
		case <-s.st.OutboxNotify():
		case <-tick.C:
		}
	}
}

func (s *Server) deliver(client *http.Client, secret, body []byte) bool {
	req, err := http.NewRequestWithContext(s.base, http.MethodPost, s.cfg.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.WebhookSignatureHeader, wire.SignWebhook(secret, s.now(), body))
	resp, err := client.Do(req)
	if err != nil {
		if s.base.Err() == nil {
			// The URL is left out: it may carry credentials.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			s.log.Warn("webhook delivery failed", "err", err)
		}
		return false
	}
	resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok {
		s.metrics.webhookDelivered.Inc()
	} else {
		s.log.Warn("webhook delivery refused", "status", resp.StatusCode)
	}
	return ok
}
