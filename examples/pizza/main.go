// Command pizza is an example delivery tracker: every delivery is a session
// whose context holds the driver's position and the ETA. The shopper orders
// through the edge, and the app notes the delivery in the shopper's own
// session; the driver's app reports positions; the shopper's page polls
// "my delivery" through the edge; when the pizza is handed over the
// delivery's session ends and its data is gone (410). See README.md.
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
	"log"
	"math"
	"net/http"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/exampleapp"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func main() {
	var cfg exampleapp.Config
	cfg.Flags("127.0.0.1:8083")
	flag.Parse()
	exampleapp.Main("pizza", func(ctx context.Context) error {
		if err := cfg.LoadSecrets(); err != nil {
			return err
		}
		h, err := newTracker(cfg.OriginURL, cfg.APIKey, cfg.AssertionKeys)
		if err != nil {
			return err
		}
		return exampleapp.Serve(ctx, "pizza", cfg.Addr, h)
	})
}

// driverSpeed is how fast the driver moves, in metres per second (30 km/h
// in town), for the ETA.
const driverSpeed = 30.0 / 3.6

type tracker struct{ client *sdk.Client }

// deliveryKey is the custom attribute of the shopper's session that names
// the shopper's delivery.
const deliveryKey = "pizza.delivery"

// newTracker returns the tracker's handler. The shopper's routes (/order,
// /my-delivery) come through the edge and need its signed assertion (keys);
// the delivery routes (/deliveries/...) are the driver app's and the
// kitchen's, service to service, and belong on a network only they reach.
func newTracker(originURL, apiKey string, keys *wire.AssertionKeys) (http.Handler, error) {
	if keys == nil {
		return nil, errors.New("no assertion keys: set " + sdk.EnvAssertionKeys + " or " + sdk.EnvAssertionKeys + "_FILE to the keys the edge signs with")
	}
	c, err := sdk.New(sdk.Config{BaseURL: originURL, APIKey: apiKey})
	if err != nil {
		return nil, err
	}
	tr := &tracker{client: c}
	shopper := http.NewServeMux()
	shopper.HandleFunc("POST /order", tr.order)
	shopper.HandleFunc("GET /my-delivery", tr.myDelivery)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /deliveries", tr.create)
	mux.HandleFunc("GET /deliveries/{id}", tr.get)
	mux.HandleFunc("POST /deliveries/{id}/position", tr.position)
	mux.HandleFunc("POST /deliveries/{id}/delivered", tr.delivered)
	mux.Handle("/", sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(shopper))
	return mux, nil
}

// point is a position in degrees.
type point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// metres returns the distance between two points (haversine).
func metres(a, b point) float64 {
	const r = 6371000.0
	rad := math.Pi / 180
	dLat, dLon := (b.Lat-a.Lat)*rad, (b.Lon-a.Lon)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Sqrt(h))
}

func pointValue(p point) wire.Value {
	return wire.Map(wire.Attr{Key: "lat", Value: wire.Float(p.Lat)}, wire.Attr{Key: "lon", Value: wire.Float(p.Lon)})
}

func pointFrom(v wire.Value) point {
	lat, _ := v.Map.Get("lat")
	lon, _ := v.Map.Get("lon")
	return point{Lat: lat.Float, Lon: lon.Float}
}

// delivery is what the customer's page shows.
type delivery struct {
	ID       string    `json:"id"`
	Order    string    `json:"order"`
	Address  point     `json:"address"`
	Position *point    `json:"position,omitempty"`
	ETA      time.Time `json:"eta,omitzero"`
	Version  uint64    `json:"version"`
}

func deliveryFrom(s *sdk.Session) delivery {
	d := delivery{ID: s.ID, Version: s.Version}
	if v, ok := s.Attr(wire.NamespaceCustom, "order"); ok {
		d.Order = v.Text
	}
	if v, ok := s.Attr(wire.NamespaceCustom, "address"); ok {
		d.Address = pointFrom(v)
	}
	if v, ok := s.Attr(wire.NamespaceCustom, "position"); ok {
		p := pointFrom(v)
		d.Position = &p
	}
	if v, ok := s.Attr(wire.NamespaceCustom, "eta"); ok {
		d.ETA = time.UnixMilli(v.Int).UTC()
	}
	return d
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail answers with the status that matches the SDK's typed error.
func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, sdk.ErrGone):
		writeJSON(w, http.StatusGone, map[string]string{"error": "delivered: the delivery's data is gone"})
	case errors.Is(err, sdk.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such delivery"})
	case errors.Is(err, sdk.ErrInvalidInput):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	default:
		log.Printf("pizza: %v", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
	}
}

type orderIn struct {
	Order   string `json:"order"`
	Address point  `json:"address"`
}

// newDelivery starts the session of a delivery.
func (tr *tracker) newDelivery(w http.ResponseWriter, r *http.Request) (*sdk.Session, bool) {
	var in orderIn
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Order == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"order": "...", "address": {"lat": .., "lon": ..}}`})
		return nil, false
	}
	c := &sdk.Context{}
	c.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("order", wire.Text(in.Order)).With("address", pointValue(in.Address))
	created, err := tr.client.Create(r.Context(), "", c)
	if err != nil {
		fail(w, err)
		return nil, false
	}
	return created.Session, true
}

// create starts a delivery for the kitchen (service to service).
func (tr *tracker) create(w http.ResponseWriter, r *http.Request) {
	if s, ok := tr.newDelivery(w, r); ok {
		writeJSON(w, http.StatusCreated, deliveryFrom(s))
	}
}

// order is the shopper ordering through the edge: the delivery starts, and
// the shopper's own session remembers it. The write goes through the
// request's context, so the shopper's next request through the edge
// already sees it (x-session-written).
func (tr *tracker) order(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	s, ok := tr.newDelivery(w, r)
	if !ok {
		return
	}
	if _, err := tr.client.SetAttribute(r.Context(), v.ID, wire.NamespaceCustom, deliveryKey, wire.Text(s.ID), sdk.Upsert()); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, deliveryFrom(s))
}

// myDelivery is the shopper's tracking page: the delivery named in the
// shopper's session, as the edge forwarded it.
func (tr *tracker) myDelivery(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	id, ok := v.Attr(wire.NamespaceCustom, deliveryKey)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "you have not ordered yet"})
		return
	}
	s, err := tr.client.Get(r.Context(), id.Text)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deliveryFrom(s))
}

func (tr *tracker) get(w http.ResponseWriter, r *http.Request) {
	s, err := tr.client.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deliveryFrom(s))
}

// position records where the driver is and the ETA from there. Two fields
// change together in one patch, so a reader never sees a position with the
// ETA of another.
func (tr *tracker) position(w http.ResponseWriter, r *http.Request) {
	var p point
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"lat": .., "lon": ..}`})
		return
	}
	id := r.PathValue("id")
	s, err := tr.client.Get(r.Context(), id, "custom.address")
	if err != nil {
		fail(w, err)
		return
	}
	left := metres(p, deliveryFrom(s).Address)
	eta := time.Now().Add(time.Duration(left / driverSpeed * float64(time.Second)))
	patch := new(sdk.Patch).
		Set(wire.NamespaceCustom, "position", pointValue(p)).
		Set(wire.NamespaceCustom, "eta", wire.Time(eta.UnixMilli()))
	s, err = tr.client.Patch(r.Context(), id, patch)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deliveryFrom(s))
}

// delivered ends the delivery's session: position and ETA are dropped, and
// every later read answers 410.
func (tr *tracker) delivered(w http.ResponseWriter, r *http.Request) {
	if err := tr.client.End(r.Context(), r.PathValue("id")); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
