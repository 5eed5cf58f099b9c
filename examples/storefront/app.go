package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"sort"
	"strings"

	"github.com/sessionedge/sessionedge/examples/internal/exampleapp"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// config configures the storefront: where it listens (keep it where only
// the edge reaches it), the origin's URL and API key (scopes sessions:read,
// sessions:write), and the keys the edge signs its assertions with.
type config = exampleapp.Config

// product is an item of the catalog; prices are kept in euro cents.
type product struct {
	SKU      string
	Name     string
	EuroCent int64
}

var catalog = []product{
	{"mug", "Edge-proof mug", 1299},
	{"tee", "Session tee", 2499},
	{"cap", "Cookie cap", 1850},
	{"socks", "Stateless socks", 799},
}

func findProduct(sku string) (product, bool) {
	for _, p := range catalog {
		if p.SKU == sku {
			return p, true
		}
	}
	return product{}, false
}

// currencies are the currencies a visitor can switch to, with the rate from
// euro in parts per 10000 and the symbol to print. The shopper switches
// through the edge's self-service endpoint, which accepts only the
// currencies the site configuration lists (the filter's
// sites.<host>.currencies): keep the two lists the same.
var currencies = []struct {
	Code   string
	Rate   int64
	Symbol string
}{
	{"EUR", 10000, "€"},
	{"USD", 10800, "$"},
	{"GBP", 8500, "£"},
	{"CHF", 9400, "CHF "},
}

// price formats euro cents in currency code.
func price(euroCent int64, code string) string {
	for _, c := range currencies {
		if c.Code == code {
			cents := (euroCent*c.Rate + 5000) / 10000
			return fmt.Sprintf("%s%d.%02d", c.Symbol, cents/100, cents%100)
		}
	}
	return price(euroCent, "EUR")
}

// profiles are the demo customers and the defaults their profiles carry;
// the app passes them at login, where they override the site defaults.
var profiles = map[string]map[wire.Field]string{
	"alice": {wire.FieldCurrency: "USD", wire.FieldLocale: "en-US", wire.FieldTargetLocation: "US"},
	"bob":   {wire.FieldCurrency: "GBP", wire.FieldLocale: "en-GB", wire.FieldTargetLocation: "GB"},
}

// cartPrefix starts the custom attribute keys of cart lines: one attribute
// per product ("cart.mug" = 2), so two tabs adding different products never
// overwrite each other's lines.
const cartPrefix = "cart."

type app struct {
	client *sdk.Client
	page   *template.Template
}

// newApp returns the storefront's handler.
func newApp(cfg config) (http.Handler, error) {
	client, err := sdk.New(sdk.Config{BaseURL: cfg.OriginURL, APIKey: cfg.APIKey})
	if err != nil {
		return nil, err
	}
	a := &app{client: client, page: template.Must(template.New("page").Parse(pageHTML))}

	shop := http.NewServeMux()
	shop.HandleFunc("GET /{$}", a.home)
	shop.HandleFunc("GET /api/session", a.apiSession)
	shop.HandleFunc("GET /api/headers", a.apiHeaders)
	shop.HandleFunc("POST /cart", a.addToCart)
	shop.HandleFunc("POST /login", a.login)
	shop.HandleFunc("POST /privacy", a.setPrivacy)
	shop.HandleFunc("POST /logout", a.logout)

	if cfg.AssertionKeys == nil {
		return nil, errors.New("storefront: no assertion keys")
	}
	mux := http.NewServeMux()
	// Health checks come from the demo script or an orchestrator, not
	// through the edge, so they are served outside the session middleware.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// Everything else needs the edge's signed assertion: a request sent
	// straight to this port with forged x-session-* headers gets 403.
	mux.Handle("/", sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: cfg.AssertionKeys, Reject: reject})(shop))
	return mux, nil
}

func reject(w http.ResponseWriter, r *http.Request, err error) {
	msg := "This shop is served through the sessionedge edge; open it at the edge's address (make demo prints it)."
	if errors.Is(err, sdk.ErrBadHeaders) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Error(w, msg, http.StatusForbidden)
}

// state is what a page shows of a session.
type state struct {
	ID         string           `json:"id"`
	Kind       string           `json:"kind"`
	Customer   string           `json:"customer,omitempty"`
	Status     string           `json:"source"` // the edge's context status: ok, new or degraded
	Generation uint32           `json:"generation"`
	Version    uint64           `json:"version"`
	Currency   string           `json:"currency"`
	Locale     string           `json:"locale,omitempty"`
	Site       string           `json:"site,omitempty"`
	Location   string           `json:"location,omitempty"`
	CartID     string           `json:"cartId,omitempty"`
	Cart       map[string]int64 `json:"cart"`
	Email      string           `json:"email,omitempty"`
	// Campaign is the marketing campaign the shopper arrived with: the
	// edge captures utm_campaign and utm_source from the query into the
	// public namespace, unless the shopper's consent cookie says no.
	Campaign string `json:"campaign,omitempty"`
	// Tracking is "off" when the edge forwards trackingAllowed false (the
	// consent cookie), "" when nothing was said.
	Tracking string `json:"tracking,omitempty"`
}

func stateFromContext(c *sdk.Context) state {
	st := state{
		Currency: c.Text(wire.FieldCurrency), Locale: c.Text(wire.FieldLocale), Site: c.Text(wire.FieldSiteCode),
		Location: c.Text(wire.FieldTargetLocation), CartID: c.Text(wire.FieldCartID), Customer: c.Text(wire.FieldCustomerID),
		Cart: map[string]int64{},
	}
	if st.Currency == "" {
		st.Currency = "EUR"
	}
	if v, ok := c.Attr(wire.NamespacePrivacy, "email"); ok {
		st.Email = v.Text
	}
	for _, key := range []string{"utm_campaign", "utm_source"} {
		if v, ok := c.Attr(wire.NamespacePublic, key); ok && v.Type == wire.TypeText && st.Campaign == "" {
			st.Campaign = v.Text
		}
	}
	if tr := c.Fields[wire.FieldTrackingAllowed]; tr.Type == wire.TypeBool {
		st.Tracking = "on"
		if !tr.BoolValue() {
			st.Tracking = "off"
		}
	}
	for _, a := range c.Attrs[wire.NamespaceCustom] {
		if sku, ok := strings.CutPrefix(a.Key, cartPrefix); ok && a.Value.Type == wire.TypeInt && a.Value.Int > 0 {
			st.Cart[sku] = a.Value.Int
		}
	}
	return st
}

// current returns the state of the request's session, as the edge
// forwarded it. After one of the app's own writes the edge has that write
// already: the middleware told it (x-session-written) and the edge brings
// its copy up to date before it forwards the next request, so the page
// after the redirect needs no read-back and no version in the URL.
//
// The privacy namespace (the email) does not travel through the edge, which
// forwards only custom and public data by default: for a logged-in shopper
// the app reads it from the origin.
func (a *app) current(r *http.Request) state {
	v := sessionhttp.FromRequest(r)
	st := stateFromContext(&v.Context)
	st.ID, st.Kind, st.Generation, st.Version, st.Status = v.ID, v.Kind.String(), v.Generation, v.Version, v.Status
	if v.LoggedIn() {
		s, err := a.client.Get(r.Context(), v.ID, "privacy.email")
		switch {
		case err == nil:
			if e, ok := s.Attr(wire.NamespacePrivacy, "email"); ok {
				st.Email = e.Text
			}
		case !errors.Is(err, sdk.ErrNotFound):
			log.Printf("storefront: reading the email of %s: %v", v.ID, err)
		}
	}
	return st
}

type line struct {
	product
	Qty   int64
	Price string
}

type pageData struct {
	S          state
	Products   []line
	Lines      []line
	Total      string
	Currencies []string
	Customers  []string
	Flash      string
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	st := a.current(r)
	d := pageData{S: st, Flash: r.URL.Query().Get("msg")}
	var total int64
	for _, p := range catalog {
		d.Products = append(d.Products, line{product: p, Price: price(p.EuroCent, st.Currency)})
		if q := st.Cart[p.SKU]; q > 0 {
			d.Lines = append(d.Lines, line{product: p, Qty: q, Price: price(p.EuroCent*q, st.Currency)})
			total += p.EuroCent * q
		}
	}
	d.Total = price(total, st.Currency)
	for _, c := range currencies {
		d.Currencies = append(d.Currencies, c.Code)
	}
	for c := range profiles {
		d.Customers = append(d.Customers, c)
	}
	sort.Strings(d.Customers)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page depends on the session; the segment header lets shared caches
	// vary on it, and private data must not be cached at all.
	w.Header().Set("Cache-Control", "private, no-store")
	if err := a.page.Execute(w, d); err != nil {
		log.Printf("storefront: rendering: %v", err)
	}
}

func (a *app) apiSession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-store")
	json.NewEncoder(w).Encode(a.current(r))
}

// apiHeaders shows the x-session-* headers the edge forwarded with this
// request, for the demo's tour of what the app receives.
func (a *app) apiHeaders(w http.ResponseWriter, r *http.Request) {
	var lines []string
	for name, vs := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-session-") {
			lines = append(lines, strings.ToLower(name)+": "+strings.Join(vs, ", "))
		}
	}
	sort.Strings(lines)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// done redirects back to the page after a write (POST/redirect/GET). The
// write was made with the request's context, so the middleware sets
// x-session-written on this redirect and the edge shows the write on the
// page it leads to.
func done(w http.ResponseWriter, r *http.Request, msg string) {
	u := "/"
	if msg != "" {
		u += "?msg=" + template.URLQueryEscaper(msg)
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

func (a *app) fail(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, sdk.ErrInvalidInput):
		status = http.StatusBadRequest
	case errors.Is(err, sdk.ErrGone):
		// The session ended under us; the edge mints a fresh one on the
		// next request.
		status = http.StatusConflict
	case errors.Is(err, sdk.ErrUnavailable):
		status = http.StatusServiceUnavailable
	}
	log.Printf("storefront: %v", err)
	http.Error(w, "sorry, that did not work: "+err.Error(), status)
}

func (a *app) addToCart(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	p, ok := findProduct(r.FormValue("sku"))
	if !ok {
		http.Error(w, "unknown product", http.StatusBadRequest)
		return
	}
	if _, err := a.addLine(r.Context(), v.ID, p.SKU); err != nil {
		a.fail(w, err)
		return
	}
	done(w, r, "Added "+p.Name+" to the cart")
}

// addLine adds one of sku to the session's cart, and gives the session a
// cart id on its first line. It reads the cart id and the line's quantity
// from the origin (Get returns only the items it lists, so both are
// listed) and writes them back only if nobody changed the session in
// between (If-Match), retrying otherwise: an increment must not be lost when
// two requests add at the same time, and the cart keeps one id.
func (a *app) addLine(ctx context.Context, id, sku string) (*sdk.Session, error) {
	key := cartPrefix + sku
	for range 5 {
		var (
			qty   int64
			opts  = []sdk.WriteOption{sdk.Upsert()}
			patch = new(sdk.Patch)
		)
		s, err := a.client.Get(ctx, id, wire.FieldCartID.String(), "custom."+key)
		switch {
		case err == nil:
			if q, ok := s.Attr(wire.NamespaceCustom, key); ok {
				qty = q.Int
			}
			opts = append(opts, sdk.IfMatch(s.Version))
			if s.Text(wire.FieldCartID) == "" {
				patch.SetField(wire.FieldCartID, wire.Text(newCartID()))
			}
		case errors.Is(err, sdk.ErrNotFound):
			// The edge minted this session and the origin has not heard of
			// it yet: the upsert creates it.
			patch.SetField(wire.FieldCartID, wire.Text(newCartID()))
		default:
			return nil, err
		}
		patch.Set(wire.NamespaceCustom, key, wire.Int(qty+1))
		s, err = a.client.Patch(ctx, id, patch, opts...)
		if errors.Is(err, sdk.ErrPreconditionFailed) {
			continue
		}
		return s, err
	}
	return nil, fmt.Errorf("cart of %s: too many concurrent changes", id)
}

func newCartID() string {
	var b [6]byte
	rand.Read(b[:])
	return "cart-" + hex.EncodeToString(b[:])
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	customer := r.FormValue("customer")
	prof, ok := profiles[customer]
	if !ok {
		http.Error(w, "unknown customer", http.StatusBadRequest)
		return
	}
	profile := &sdk.Context{}
	for f, val := range prof {
		profile.Fields[f] = wire.Text(val)
	}
	// Same session id and context, new generation: the old cookie dies and
	// the edge sets the new token as the cookie.
	in, err := a.client.Login(r.Context(), v.ID, customer, profile, sdk.Upsert())
	if err != nil {
		a.fail(w, err)
		return
	}
	sessionhttp.SetToken(w, in.Token)
	done(w, r, "Welcome, "+customer)
}

func (a *app) setPrivacy(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	email := strings.TrimSpace(r.FormValue("email"))
	if email == "" || !strings.Contains(email, "@") {
		http.Error(w, "that is not an email address", http.StatusBadRequest)
		return
	}
	if _, err := a.client.SetAttribute(r.Context(), v.ID, wire.NamespacePrivacy, "email", wire.Text(email), sdk.Upsert()); err != nil {
		a.fail(w, err)
		return
	}
	done(w, r, "We will send order updates to "+email+" (until you log out)")
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	v := sessionhttp.FromRequest(r)
	out, err := a.client.Logout(r.Context(), v.ID)
	if errors.Is(err, sdk.ErrNotFound) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	sessionhttp.SetToken(w, out.Token)
	done(w, r, "Logged out; your cart is still here")
}
