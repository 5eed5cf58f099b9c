// Command settings is an example of a shared session: settings that many
// services read (a maintenance flag, a banner, the free-shipping threshold)
// live in one session found by name. Run several instances against one
// origin: each finds the same settings by name, and a change made through
// one is seen by all. Shoppers read the banner through the edge
// (GET /banner); the services change the settings directly (PUT /settings).
// See README.md.
//
// Secrets come from the environment or files, never from flags: the origin
// API key from SESSIONEDGE_API_KEY (or SESSIONEDGE_API_KEY_FILE), the edge's
// assertion keys from SESSIONEDGE_ASSERTION_KEYS (or
// SESSIONEDGE_ASSERTION_KEYS_FILE).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"strconv"
	"strings"

	"github.com/sessionedge/sessionedge/examples/internal/exampleapp"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func main() {
	var cfg exampleapp.Config
	cfg.Flags("127.0.0.1:8085")
	name := flag.String("name", "shop-settings", "name of the shared session")
	service := flag.String("service", "settings", "this service's name, shown in answers")
	flag.Parse()
	exampleapp.Main("settings", func(ctx context.Context) error {
		if err := cfg.LoadSecrets(); err != nil {
			return err
		}
		h, err := newService(cfg.OriginURL, cfg.APIKey, cfg.AssertionKeys, *name, *service)
		if err != nil {
			return err
		}
		return exampleapp.Serve(ctx, "settings ("+*service+")", cfg.Addr, h)
	})
}

// settings is the shared configuration of the shop.
type settings struct {
	Service          string `json:"service,omitempty"` // which service answered
	Version          uint64 `json:"version"`
	Maintenance      bool   `json:"maintenance"`
	Banner           string `json:"banner"`
	FreeShippingFrom string `json:"freeShippingFrom"` // a decimal, e.g. "49.90"
}

type service struct {
	client *sdk.Client
	name   string
	who    string
}

// newService returns the service's handler. GET /banner serves shoppers
// through the edge and needs its signed assertion (keys); /settings is for
// the shop's services and admins, on a network only they reach.
func newService(originURL, apiKey string, keys *wire.AssertionKeys, name, who string) (http.Handler, error) {
	if keys == nil {
		return nil, errors.New("no assertion keys: set " + sdk.EnvAssertionKeys + " or " + sdk.EnvAssertionKeys + "_FILE to the keys the edge signs with")
	}
	c, err := sdk.New(sdk.Config{BaseURL: originURL, APIKey: apiKey})
	if err != nil {
		return nil, err
	}
	s := &service{client: c, name: name, who: who}
	shopper := http.NewServeMux()
	shopper.HandleFunc("GET /banner", s.banner)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /settings", s.get)
	mux.HandleFunc("PUT /settings", s.put)
	mux.Handle("/", sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(shopper))
	return mux, nil
}

// bannerOut is what a shopper's page shows of the settings.
type bannerOut struct {
	Banner           string `json:"banner"`
	Maintenance      bool   `json:"maintenance"`
	FreeShippingFrom string `json:"freeShippingFrom,omitempty"`
	Currency         string `json:"currency"` // the shopper's, from the session
}

// banner serves the shop's banner to a shopper, with the shopper's
// currency from the session the edge forwarded.
func (s *service) banner(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	out := bannerOut{Currency: v.Text(wire.FieldCurrency)}
	sess, err := s.client.GetShared(r.Context(), s.name)
	switch {
	case err == nil:
		st := fromSession(sess)
		out.Banner, out.Maintenance, out.FreeShippingFrom = st.Banner, st.Maintenance, st.FreeShippingFrom
	case !errors.Is(err, sdk.ErrNotFound):
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fromSession(s *sdk.Session) settings {
	out := settings{Version: s.Version}
	if v, ok := s.Attr(wire.NamespaceCustom, "maintenance"); ok {
		out.Maintenance = v.BoolValue()
	}
	if v, ok := s.Attr(wire.NamespaceCustom, "banner"); ok {
		out.Banner = v.Text
	}
	if v, ok := s.Attr(wire.NamespaceCustom, "freeShippingFrom"); ok {
		out.FreeShippingFrom = sdk.FormatDecimal(v)
	}
	return out
}

func (s *service) get(w http.ResponseWriter, r *http.Request) {
	sess, err := s.client.GetShared(r.Context(), s.name)
	if errors.Is(err, sdk.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no settings yet: PUT /settings first"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	out := fromSession(sess)
	out.Service = s.who
	w.Header().Set("ETag", `"`+strconv.FormatUint(sess.Version, 10)+`"`)
	writeJSON(w, http.StatusOK, out)
}

// put replaces the settings. An If-Match header makes it a compare-and-swap
// on the shared session's version, so two admins editing at once do not
// silently overwrite each other: the second gets 409 and the current version.
func (s *service) put(w http.ResponseWriter, r *http.Request) {
	var in settings
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	attrs := wire.Attrs{}.With("maintenance", wire.Bool(in.Maintenance)).With("banner", wire.Text(in.Banner))
	if in.FreeShippingFrom != "" {
		coef, exp, ok := wire.ParseDecimal(in.FreeShippingFrom)
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "freeShippingFrom is not a decimal"})
			return
		}
		attrs = attrs.With("freeShippingFrom", wire.Decimal(coef, exp))
	}
	c := &sdk.Context{}
	c.Attrs[wire.NamespaceCustom] = attrs
	var opts []sdk.WriteOption
	if m := r.Header.Get("If-Match"); m != "" {
		v, err := strconv.ParseUint(strings.Trim(m, `"`), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "If-Match is not a version"})
			return
		}
		opts = append(opts, sdk.IfMatch(v))
	}
	// PutShared finds the shared session (creating it on first use); the
	// change itself is a Replace of its context by id.
	shared, err := s.client.PutShared(r.Context(), s.name, nil)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	sess, err := s.client.Replace(r.Context(), shared.ID, c, opts...)
	var apiErr *sdk.Error
	switch {
	case errors.Is(err, sdk.ErrPreconditionFailed) && errors.As(err, &apiErr):
		writeJSON(w, http.StatusConflict, map[string]any{"error": "changed meanwhile", "currentVersion": apiErr.CurrentVersion})
		return
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	out := fromSession(sess)
	out.Service = s.who
	writeJSON(w, http.StatusOK, out)
}
