// Command settings is an example of a shared session: settings that many
// services read (a maintenance flag, a banner, the free-shipping threshold)
// live in one session found by name. Run several instances against one
// origin: each finds the same settings by name, and a change made through
// one is seen by all. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func main() {
	addr := flag.String("addr", ":8085", "address to listen on")
	origin := flag.String("origin", "http://127.0.0.1:8081", "origin API base URL")
	key := flag.String("api-key", os.Getenv("SESSIONEDGE_API_KEY"), "origin API key (env SESSIONEDGE_API_KEY)")
	name := flag.String("name", "shop-settings", "name of the shared session")
	service := flag.String("service", "settings", "this service's name, shown in answers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := newService(*origin, *key, *name, *service)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("settings (%s): listening on %s", *service, ln.Addr())
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
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

func newService(originURL, apiKey, name, who string) (http.Handler, error) {
	c, err := sdk.New(sdk.Config{BaseURL: originURL, APIKey: apiKey})
	if err != nil {
		return nil, err
	}
	s := &service{client: c, name: name, who: who}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /settings", s.get)
	mux.HandleFunc("PUT /settings", s.put)
	return mux, nil
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
