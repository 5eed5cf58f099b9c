// Command pizza is an example delivery tracker: every delivery is a session
// whose context holds the driver's position and the ETA. The driver's app
// reports positions, the customer's page polls the delivery, and when the
// pizza is handed over the session ends and its data is gone (410). See
// README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func main() {
	addr := flag.String("addr", ":8083", "address to listen on")
	origin := flag.String("origin", "http://127.0.0.1:8081", "origin API base URL")
	key := flag.String("api-key", os.Getenv("SESSIONEDGE_API_KEY"), "origin API key with sessions:read and sessions:write (env SESSIONEDGE_API_KEY)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *origin, *key); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, originURL, apiKey string) error {
	h, err := newTracker(originURL, apiKey)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("pizza: listening on %s", ln.Addr())
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// driverSpeed is how fast the driver moves, in metres per second (30 km/h
// in town), for the ETA.
const driverSpeed = 30.0 / 3.6

type tracker struct{ client *sdk.Client }

func newTracker(originURL, apiKey string) (http.Handler, error) {
	c, err := sdk.New(sdk.Config{BaseURL: originURL, APIKey: apiKey})
	if err != nil {
		return nil, err
	}
	tr := &tracker{client: c}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /deliveries", tr.create)
	mux.HandleFunc("GET /deliveries/{id}", tr.get)
	mux.HandleFunc("POST /deliveries/{id}/position", tr.position)
	mux.HandleFunc("POST /deliveries/{id}/delivered", tr.delivered)
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

func (tr *tracker) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Order   string `json:"order"`
		Address point  `json:"address"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Order == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"order": "...", "address": {"lat": .., "lon": ..}}`})
		return
	}
	c := &sdk.Context{}
	c.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("order", wire.Text(in.Order)).With("address", pointValue(in.Address))
	created, err := tr.client.Create(r.Context(), "", c)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, deliveryFrom(created.Session))
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
