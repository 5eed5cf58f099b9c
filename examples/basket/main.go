// Command basket is an example of keeping what matters when a session ends:
// a shopper's basket lives in the shopper's session (reached through the
// edge), which the app gives a short idle lifetime of its own when it
// creates it, leaving every other session's timeouts alone; when the
// shopper walks away the origin expires the session and delivers the final
// basket in a signed "session.ended" webhook, and this app stores it in its
// own database (here a JSON file) for the "you left something behind" mail.
// Its webhook receiver logs every lifecycle event of a session (started,
// changed, login, logout, flushed, ended). See README.md.
//
// Secrets come from the environment or files, never from flags: the origin
// API key from SESSIONEDGE_API_KEY, the webhook secret from
// SESSIONEDGE_WEBHOOK_SECRET, the edge's assertion keys from
// SESSIONEDGE_ASSERTION_KEYS (each, or the file NAME_FILE names).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/exampleapp"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func main() {
	var cfg exampleapp.Config
	cfg.Flags("127.0.0.1:8084")
	db := flag.String("db", "abandoned-baskets.json", "file that stores abandoned baskets")
	idle := flag.Duration("idle", 30*time.Minute, "idle lifetime of a basket's session: a basket left alone this long is abandoned")
	hard := flag.Duration("hard", 0, "hard lifetime of a basket's session, counted from its start (0: the origin's timeout of its kind)")
	flag.Parse()
	if *idle < time.Second || *hard < 0 || (*hard > 0 && *hard < time.Second) {
		log.Fatalf("basket: -idle %v, -hard %v: lifetimes are at least a second", *idle, *hard)
	}
	exampleapp.Main("basket", func(ctx context.Context) error {
		if err := cfg.LoadSecrets(); err != nil {
			return err
		}
		// The webhook secret, shared with the origin, is what the
		// receiver checks each delivery's signature with.
		secret, err := sdk.SecretFromEnv(sdk.EnvWebhookSecret)
		if err != nil {
			return err
		}
		if len(secret) == 0 {
			return fmt.Errorf("no webhook secret: set %s or %s_FILE", sdk.EnvWebhookSecret, sdk.EnvWebhookSecret)
		}
		h, err := newShop(cfg.OriginURL, cfg.APIKey, secret, cfg.AssertionKeys, *db, sdk.Lifetime{Idle: *idle, Hard: *hard})
		if err != nil {
			return err
		}
		return exampleapp.Serve(ctx, "basket", cfg.Addr, h)
	})
}

// itemPrefix starts the custom attribute key of each basket line.
const itemPrefix = "items."

// abandoned is a basket kept after its session ended.
type abandoned struct {
	SessionID string           `json:"sessionId"`
	Reason    string           `json:"reason"`
	EndedAt   time.Time        `json:"endedAt"`
	Items     map[string]int64 `json:"items"`
}

// store is the app's own "primary database": a JSON file rewritten on each
// change. Webhooks come at least once, so a basket is keyed by session id
// and a repeat delivery changes nothing.
type store struct {
	mu   sync.Mutex
	path string
	rows map[string]abandoned
}

func openStore(path string) (*store, error) {
	s := &store{path: path, rows: map[string]abandoned{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	return s, json.Unmarshal(b, &s.rows)
}

// put stores a basket and reports whether it was new.
func (s *store) put(a abandoned) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[a.SessionID]; ok {
		return false, nil
	}
	s.rows[a.SessionID] = a
	b, _ := json.MarshalIndent(s.rows, "", "  ")
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return false, err
	}
	// Rename makes the write atomic: a crash leaves the old file or the new.
	return true, os.Rename(tmp, s.path)
}

func (s *store) all() []abandoned {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]abandoned, 0, len(s.rows))
	for _, a := range s.rows {
		out = append(out, a)
	}
	return out
}

// event is a webhook event as the receiver logged it.
type event struct {
	ID      string           `json:"id"`
	Type    string           `json:"type"`
	Session string           `json:"session"`
	At      time.Time        `json:"at"`
	Reason  string           `json:"reason,omitempty"`
	Items   map[string]int64 `json:"items,omitempty"`
}

// maxEvents bounds the receiver's in-memory event log.
const maxEvents = 10000

// eventLog keeps the distinct events received, in the order they arrived:
// deliveries are at least once, so a repeat of an event id is dropped.
type eventLog struct {
	mu     sync.Mutex
	seen   map[string]bool
	events []event
}

// add logs e and reports whether it is new.
func (l *eventLog) add(e event) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[e.ID] {
		return false
	}
	if len(l.events) == maxEvents {
		delete(l.seen, l.events[0].ID)
		l.events = l.events[1:]
	}
	l.seen[e.ID] = true
	l.events = append(l.events, e)
	return true
}

// of returns the events of a session ("" for all).
func (l *eventLog) of(session string) []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []event{}
	for _, e := range l.events {
		if session == "" || e.Session == session {
			out = append(out, e)
		}
	}
	return out
}

type shop struct {
	client *sdk.Client
	secret []byte
	db     *store
	life   sdk.Lifetime // the lifetime of a basket's session
	events eventLog
}

// newShop returns the app's handler. The shopper's routes (/basket, /login,
// /logout) come through the edge and need its signed assertion (keys); the
// webhook comes from the origin, signed with secret; /abandoned, /events
// and /baskets/{id}/flush are the back office's and belong on a network only
// it reaches. A basket's session has the lifetime life.
func newShop(originURL, apiKey string, secret []byte, keys *wire.AssertionKeys, dbPath string, life sdk.Lifetime) (http.Handler, error) {
	if keys == nil {
		return nil, errors.New("no assertion keys: set " + sdk.EnvAssertionKeys + " or " + sdk.EnvAssertionKeys + "_FILE to the keys the edge signs with")
	}
	c, err := sdk.New(sdk.Config{BaseURL: originURL, APIKey: apiKey})
	if err != nil {
		return nil, err
	}
	db, err := openStore(dbPath)
	if err != nil {
		return nil, err
	}
	s := &shop{client: c, secret: secret, db: db, life: life, events: eventLog{seen: map[string]bool{}}}
	shopper := http.NewServeMux()
	shopper.HandleFunc("POST /basket/items", s.add)
	shopper.HandleFunc("GET /basket", s.get)
	shopper.HandleFunc("POST /login", s.login)
	shopper.HandleFunc("POST /logout", s.logout)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /webhooks/sessions", s.webhook)
	mux.HandleFunc("GET /abandoned", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.db.all()) })
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.events.of(r.URL.Query().Get("session")))
	})
	mux.HandleFunc("POST /baskets/{id}/flush", s.flush)
	mux.Handle("/", sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(shopper))
	return mux, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func items(c *sdk.Context) map[string]int64 {
	out := map[string]int64{}
	for _, a := range c.Attrs[wire.NamespaceCustom] {
		if sku, ok := strings.CutPrefix(a.Key, itemPrefix); ok && a.Value.Type == wire.TypeInt {
			out[sku] = a.Value.Int
		}
	}
	return out
}

func (s *shop) fail(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, sdk.ErrGone):
		status = http.StatusGone
	case errors.Is(err, sdk.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, sdk.ErrInvalidInput):
		status = http.StatusBadRequest
	case errors.Is(err, sdk.ErrNotLoggedIn):
		status = http.StatusConflict
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// basket is what the shopper's routes answer.
type basket struct {
	Session string           `json:"session"`
	Items   map[string]int64 `json:"items"`
}

// add sets a line of the shopper's basket. The first write creates the
// session at the origin (Upsert: the edge minted it) with the basket's
// lifetime, a lifetime of this session alone: the origin's timeouts of
// other anonymous sessions stay as they are. The write goes through the
// request's context, so the shopper's next request through the edge sees
// it.
//
// The lifetime applies when this write creates the session. A shopper whose
// first request is the first add (as here) always gets it; a session the
// origin already knew (from the edge's activity report, after the shopper
// browsed other pages first) keeps the timeouts of its kind.
func (s *shop) add(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	var in struct {
		SKU string `json:"sku"`
		Qty int64  `json:"qty"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.SKU == "" || in.Qty <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"sku": "...", "qty": n}`})
		return
	}
	sess, err := s.client.SetAttribute(r.Context(), v.ID, wire.NamespaceCustom, itemPrefix+in.SKU, wire.Int(in.Qty),
		sdk.Upsert(), sdk.WithLifetime(s.life))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, basket{Session: v.ID, Items: items(&sess.Context)})
}

// get shows the shopper's basket, as the edge forwarded it.
func (s *shop) get(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	writeJSON(w, http.StatusOK, basket{Session: v.ID, Items: items(&v.Context)})
}

// login logs the shopper in as the customer named in {"customer": "..."}:
// same session and basket, a new generation (the edge sets the new cookie).
// The login gives the logged-in session the basket's lifetime again (a
// login without one would give it the customer timeouts); its hard
// deadline stays where it was or comes closer.
func (s *shop) login(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	var in struct {
		Customer string `json:"customer"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Customer == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"customer": "..."}`})
		return
	}
	res, err := s.client.Login(r.Context(), v.ID, in.Customer, nil, sdk.Upsert(), sdk.WithLifetime(s.life))
	s.issued(w, v.ID, res, err)
}

// logout logs the shopper out: the basket stays in the session, which
// takes the origin's anonymous timeouts again (its hard deadline stays).
func (s *shop) logout(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	res, err := s.client.Logout(r.Context(), v.ID)
	s.issued(w, v.ID, res, err)
}

// issued answers a login or logout of session id: the new token, which the
// edge turns into the shopper's cookie, and the basket.
func (s *shop) issued(w http.ResponseWriter, id string, res *sdk.Issued, err error) {
	if err != nil {
		s.fail(w, err)
		return
	}
	sessionhttp.SetToken(w, res.Token)
	writeJSON(w, http.StatusOK, basket{Session: id, Items: items(&res.Session.Context)})
}

// flush asks the origin for a session's basket now (the back office's
// "what is in this basket?"): it arrives in a session.flushed webhook, and
// the session goes on.
func (s *shop) flush(w http.ResponseWriter, r *http.Request) {
	if _, err := s.client.Flush(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// webhook receives the origin's session events: it logs each distinct
// event (deliveries come at least once: a repeat of an event id is
// dropped), and keeps the final basket of every session that ended with
// something in it. It answers 2xx only once the basket is stored, so the
// origin retries until it is.
func (s *shop) webhook(w http.ResponseWriter, r *http.Request) {
	ev, err := sdk.ParseWebhook(r, s.secret)
	if errors.Is(err, sdk.ErrBadSignature) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e := event{ID: ev.ID, Type: ev.Type, Session: ev.SessionID, At: ev.At, Reason: ev.Reason}
	if ev.Session != nil {
		e.Items = items(&ev.Session.Context)
	}
	if ev.Type == sdk.EventSessionEnded && len(e.Items) > 0 {
		fresh, err := s.db.put(abandoned{SessionID: ev.SessionID, Reason: ev.Reason, EndedAt: ev.At, Items: e.Items})
		if err != nil {
			log.Printf("basket: storing %s: %v", ev.SessionID, err)
			http.Error(w, "cannot store", http.StatusInternalServerError)
			return
		}
		if fresh {
			log.Printf("basket: kept abandoned basket of %s (%s): %v", ev.SessionID, ev.Reason, e.Items)
		}
	}
	if s.events.add(e) {
		switch ev.Type {
		case sdk.EventSessionStarted:
			log.Printf("basket: %s: session started", ev.SessionID)
		case sdk.EventSessionChanged:
			log.Printf("basket: %s: basket changed: %v", ev.SessionID, e.Items)
		case sdk.EventSessionLogin:
			log.Printf("basket: %s: logged in", ev.SessionID)
		case sdk.EventSessionLogout:
			log.Printf("basket: %s: logged out", ev.SessionID)
		case sdk.EventSessionFlushed:
			log.Printf("basket: %s: basket now: %v", ev.SessionID, e.Items)
		case sdk.EventSessionEnded:
			log.Printf("basket: %s: session ended (%s)", ev.SessionID, ev.Reason)
		default:
			log.Printf("basket: %s: event %s", ev.SessionID, ev.Type)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
