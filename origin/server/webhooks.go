package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// SignatureHeader carries the webhook signature: "t=<unix seconds>,v1=<hex
// HMAC-SHA256(secret, "<t>." + body)>".
const SignatureHeader = "X-Sessionedge-Signature"

// events returns the webhook bodies a change from prev to next owes: a
// session.started when it is created, a session.ended with the final context
// (the state before the end) when it ends.
func (s *Server) events(prev, next *wire.Session, at int64) [][]byte {
	if s.cfg.Webhook.URL == "" {
		return nil
	}
	var out [][]byte
	if prev == nil {
		out = append(out, eventBody("session.started", next, next, at))
	}
	if next.Ended != 0 && (prev == nil || prev.Ended == 0) {
		final := next
		if prev != nil {
			final = prev
		}
		out = append(out, eventBody("session.ended", next, final, at))
	}
	return out
}

func eventBody(typ string, next, final *wire.Session, at int64) []byte {
	b := append(make([]byte, 0, 512), `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","eventId":"`...)
	b = next.ID.AppendText(b)
	b = append(append(b, '.'), strconv.FormatUint(next.Version, 10)...)
	b = append(b, `","id":"`...)
	b = next.ID.AppendText(b)
	b = append(b, `","at":`...)
	b = wire.AppendTimeJSON(b, at)
	if next.Ended != 0 {
		b = append(append(append(b, `,"reason":"`...), next.Ended.String()...), '"')
	}
	b = append(b, `,"session":`...)
	b = wire.AppendSessionJSON(b, final, wire.AllNamespaces)
	return append(b, '}')
}

// Sign returns the signature header value for body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

type retryState struct {
	attempts int
	next     time.Time
}

// webhookLoop delivers outbox entries at least once: an entry leaves the
// outbox only after a 2xx answer; failures retry with exponential backoff
// and jitter, capped at Webhook.MaxBackoff. Retry state is in memory: after
// a restart every pending entry is tried again at once.
func (s *Server) webhookLoop() {
	defer s.bg.Done()
	timeout := s.cfg.Webhook.Timeout.Or(Duration(10 * time.Second)).Std()
	maxBackoff := s.cfg.Webhook.MaxBackoff.Or(Duration(5 * time.Minute)).Std()
	client := &http.Client{Timeout: timeout}
	secret := []byte(s.cfg.Webhook.Secret)
	retries := map[string]*retryState{}
	// An entry this node claims stays leased to it for a short while; one
	// that failed is claimed again when the lease lapses and retried once its
	// backoff has passed. Origin nodes sharing a store share the work.
	lease := min(time.Second, maxBackoff)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	// Store errors are logged when they start and when they stop, not on
	// every tick.
	claimFailing := false
	for {
		backlog := 0
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
				break
			}
			for _, e := range es {
				backlog++
				r := retries[e.ID]
				if r != nil && s.now().Before(r.next) {
					continue
				}
				if s.deliver(client, secret, e.Body) {
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
					r = &retryState{}
					retries[e.ID] = r
				}
				r.attempts++
				d := time.Duration(float64(time.Second) * float64(uint(1)<<min(r.attempts-1, 20)))
				d = min(d, maxBackoff)
				r.next = s.now().Add(d/2 + time.Duration(rand.Int64N(int64(d/2)+1)))
				s.metrics.webhookFailures.Inc()
			}
			if len(es) < 256 {
				break
			}
		}
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
	req.Header.Set(SignatureHeader, Sign(secret, s.now(), body))
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
