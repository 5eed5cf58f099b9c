package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The API keys of the origins under test and their scopes.
var testKeys = map[string][]string{
	"app-key":   {"sessions:read", "sessions:write"},
	"read-key":  {"sessions:read"},
	"admin-key": {"sessions:read", "sessions:write", "sessions:admin"},
}

// TestClientAgainstOrigins runs the client suite against sdktest's fake
// origin and against the real one: the fake must answer as the origin does.
func TestClientAgainstOrigins(t *testing.T) { bothOrigins(t, runClientSuite) }

// bothOrigins runs test against sdktest's fake origin and against the real
// origin binary, each with testKeys, as subtests "fake" and "origin".
func bothOrigins(t *testing.T, test func(t *testing.T, url string)) {
	t.Run("fake", func(t *testing.T) {
		o := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{APIKeys: testKeys})
		defer o.Close()
		test(t, o.URL)
	})
	t.Run("origin", func(t *testing.T) {
		o := testbin.StartOrigin(t, testbin.OriginConfig{APIKeys: originKeys()})
		test(t, o.URL)
	})
}

// originKeys returns testKeys for the real origin.
func originKeys() []testbin.APIKey {
	var keys []testbin.APIKey
	for k, scopes := range testKeys {
		keys = append(keys, testbin.APIKey{Name: strings.TrimSuffix(k, "-key"), Key: k, Scopes: scopes})
	}
	return keys
}

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

func newClient(t *testing.T, url, key string) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{BaseURL: url, APIKey: key, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantErr fails unless err matches target; it returns the *sdk.Error.
func wantErr(t *testing.T, err, target error) *sdk.Error {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
	var e *sdk.Error
	errors.As(err, &e)
	return e
}

// runClientSuite drives every route of the origin API through the client,
// and provokes every typed error the origin can answer.
func runClientSuite(t *testing.T, url string) {
	ctx := context.Background()
	c := newClient(t, url, "app-key")

	initial := &sdk.Context{}
	initial.Fields[wire.FieldCurrency] = wire.Text("EUR")
	initial.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("theme", wire.Text("dark"))
	created, err := c.Create(ctx, "", initial)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Session.ID
	if _, err := wire.ParseID(id); err != nil || len(created.Token) != wire.TokenLen {
		t.Fatalf("created %q token %q", id, created.Token)
	}
	if created.Session.Kind != wire.KindAnonymous || created.Session.Generation != 1 || created.Session.Version != 1 {
		t.Fatalf("created %+v", created.Session)
	}

	t.Run("get", func(t *testing.T) {
		s, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != id || s.Text(wire.FieldCurrency) != "EUR" || s.Created.IsZero() {
			t.Fatalf("session %+v", s)
		}
		if v, _ := s.Attr(wire.NamespaceCustom, "theme"); v.Text != "dark" {
			t.Fatalf("custom %+v", s.Attrs)
		}
	})

	t.Run("patch with If-Match, then a stale one", func(t *testing.T) {
		s, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		p := new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("cart-1")).Set(wire.NamespaceCustom, "price", wire.Decimal(1999, -2))
		s2, err := c.Patch(ctx, id, p, sdk.IfMatch(s.Version))
		if err != nil {
			t.Fatal(err)
		}
		if s2.Version != s.Version+1 || s2.Text(wire.FieldCartID) != "cart-1" || s2.Text(wire.FieldCurrency) != "EUR" {
			t.Fatalf("patched %+v", s2)
		}
		_, err = c.Patch(ctx, id, new(sdk.Patch).SetField(wire.FieldLocale, wire.Text("de-DE")), sdk.IfMatch(s.Version))
		if e := wantErr(t, err, sdk.ErrPreconditionFailed); e.CurrentVersion != s2.Version {
			t.Fatalf("current version %d, want %d", e.CurrentVersion, s2.Version)
		}
	})

	t.Run("concurrent patches of different keys keep each other", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				_, err := c.Patch(ctx, id, new(sdk.Patch).Set(wire.NamespaceCustom, fmt.Sprintf("k%d", i), wire.Int(int64(i))))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		s, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			if v, ok := s.Attr(wire.NamespaceCustom, fmt.Sprintf("k%d", i)); !ok || v.Int != int64(i) {
				t.Errorf("custom.k%d = %+v, %v", i, v, ok)
			}
		}
	})

	t.Run("attributes and items", func(t *testing.T) {
		if _, err := c.SetAttribute(ctx, id, wire.NamespacePrivacy, "email", wire.Text("ann@example.com")); err != nil {
			t.Fatal(err)
		}
		s, err := c.DeleteAttribute(ctx, id, wire.NamespaceCustom, "k0")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Attr(wire.NamespaceCustom, "k0"); ok {
			t.Fatal("custom.k0 still there")
		}
		s, err = c.Get(ctx, id, "privacy.email")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Attr(wire.NamespacePrivacy, "email"); v.Text != "ann@example.com" {
			t.Fatalf("privacy %+v", s.Attrs)
		}
		if _, ok := s.Attr(wire.NamespaceCustom, "theme"); ok {
			t.Fatalf("items=privacy.email returned custom.theme too: %+v", s.Attrs)
		}
	})

	// The items contract: only what is listed comes back, fields included.
	t.Run("items select fields, attributes and namespaces, nothing else", func(t *testing.T) {
		s, err := c.Get(ctx, id, "custom.theme")
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != id || s.Version == 0 || s.Kind != wire.KindAnonymous {
			t.Fatalf("metadata missing with items: %+v", s)
		}
		if v, _ := s.Attr(wire.NamespaceCustom, "theme"); v.Text != "dark" || len(s.Attrs[wire.NamespaceCustom]) != 1 {
			t.Fatalf("custom %+v", s.Attrs)
		}
		if !s.Fields[wire.FieldCartID].IsZero() || !s.Fields[wire.FieldCurrency].IsZero() {
			t.Fatalf("unlisted fields came back: %+v", s.Fields)
		}
		s, err = c.Get(ctx, id, "cartId", "custom.theme", "custom.nope", "privacy")
		if err != nil {
			t.Fatal(err)
		}
		if s.Text(wire.FieldCartID) != "cart-1" || !s.Fields[wire.FieldCurrency].IsZero() {
			t.Fatalf("fields %+v", s.Fields)
		}
		if v, _ := s.Attr(wire.NamespacePrivacy, "email"); v.Text != "ann@example.com" || len(s.Attrs[wire.NamespaceCustom]) != 1 {
			t.Fatalf("attrs %+v", s.Attrs)
		}
		_, err = c.Get(ctx, id, "nonsense")
		if e := wantErr(t, err, sdk.ErrInvalidInput); e.Field != "items" {
			t.Fatalf("field %q", e.Field)
		}
	})

	t.Run("writes with a recorder in the context record the version", func(t *testing.T) {
		rec := sdk.NewWriteRecorder(id)
		rctx := sdk.WithWriteRecorder(ctx, rec)
		s, err := c.SetAttribute(rctx, id, wire.NamespaceCustom, "seen", wire.Bool(true))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Version() != s.Version {
			t.Fatalf("recorded %d, write reached %d", rec.Version(), s.Version)
		}
		// A failed write records nothing; a write of another session
		// neither.
		_, err = c.Patch(rctx, id, new(sdk.Patch).SetField(wire.FieldLocale, wire.Text("x")), sdk.IfMatch(1))
		wantErr(t, err, sdk.ErrPreconditionFailed)
		other, err := c.Create(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := c.SetAttribute(rctx, other.Session.ID, wire.NamespaceCustom, "x", wire.Int(1)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Get(rctx, id); err != nil {
			t.Fatal(err)
		}
		if rec.Version() != s.Version {
			t.Fatalf("recorded %d after unrelated calls, want %d", rec.Version(), s.Version)
		}
	})

	t.Run("login keeps id and context, raises the generation", func(t *testing.T) {
		before, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		profile := &sdk.Context{}
		profile.Fields[wire.FieldCurrency] = wire.Text("GBP")
		profile.Fields[wire.FieldLocale] = wire.Text("en-GB")
		in, err := c.Login(ctx, id, "cust-7", profile)
		if err != nil {
			t.Fatal(err)
		}
		s := in.Session
		if s.ID != id || s.Kind != wire.KindCustomer || s.Generation != before.Generation+1 || s.CustomerID() != "cust-7" {
			t.Fatalf("after login %+v", s)
		}
		if s.Text(wire.FieldCurrency) != "GBP" || s.Text(wire.FieldCartID) != "cart-1" {
			t.Fatalf("after login fields %+v", s.Fields)
		}
		if in.Token == "" || in.Token == created.Token {
			t.Fatalf("login token %q", in.Token)
		}
		_, err = c.CustomerSessions(ctx, "cust-7")
		wantErr(t, err, sdk.ErrForbidden)
		list, err := newClient(t, url, "admin-key").CustomerSessions(ctx, "cust-7")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != id {
			t.Fatalf("customer sessions %+v", list)
		}
	})

	t.Run("logout clears privacy and keeps the cart", func(t *testing.T) {
		out, err := c.Logout(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s := out.Session
		if s.Kind != wire.KindAnonymous || s.CustomerID() != "" || s.Generation != 3 {
			t.Fatalf("after logout %+v", s)
		}
		if len(s.Attrs[wire.NamespacePrivacy]) != 0 || s.Text(wire.FieldCartID) != "cart-1" {
			t.Fatalf("after logout %+v", s.Context)
		}
		ref, err := c.Refresh(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ref.Token == "" || ref.Session.ID != id || ref.Session.Generation != 3 {
			t.Fatalf("refresh %+v", ref)
		}
	})

	t.Run("replace and clear", func(t *testing.T) {
		repl := &sdk.Context{}
		repl.Fields[wire.FieldSiteCode] = wire.Text("UK")
		repl.Attrs[wire.NamespacePublic] = wire.Attrs{}.With("seen", wire.Bool(true))
		s, err := c.Replace(ctx, id, repl)
		if err != nil {
			t.Fatal(err)
		}
		if s.Text(wire.FieldSiteCode) != "UK" || s.Text(wire.FieldCartID) != "" || len(s.Attrs[wire.NamespaceCustom]) != 0 {
			t.Fatalf("after replace %+v", s.Context)
		}
		s, err = c.ClearData(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != id || len(s.Attrs[wire.NamespaceCustom])+len(s.Attrs[wire.NamespacePrivacy])+len(s.Attrs[wire.NamespacePublic]) != 0 {
			t.Fatalf("after clear %+v", s.Context)
		}
	})

	t.Run("upsert creates an edge-minted session", func(t *testing.T) {
		nid, _ := wire.NewID()
		_, err := c.Patch(ctx, nid.String(), new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c")))
		wantErr(t, err, sdk.ErrNotFound)
		_, err = c.Get(ctx, nid.String())
		wantErr(t, err, sdk.ErrNotFound)
		s, err := c.Patch(ctx, nid.String(), new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c")), sdk.Upsert())
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != nid.String() || s.Kind != wire.KindAnonymous || s.Generation != 1 || s.Text(wire.FieldCartID) != "c" {
			t.Fatalf("upserted %+v", s)
		}
	})

	t.Run("end leaves a tombstone", func(t *testing.T) {
		cr, err := c.Create(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.End(ctx, cr.Session.ID); err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(ctx, cr.Session.ID)
		wantErr(t, err, sdk.ErrGone)
		_, err = c.Patch(ctx, cr.Session.ID, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c")), sdk.Upsert())
		wantErr(t, err, sdk.ErrGone)
	})

	t.Run("shared sessions are found by name", func(t *testing.T) {
		settings := &sdk.Context{}
		settings.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("maintenance", wire.Bool(false))
		s, err := c.PutShared(ctx, "store-settings", settings)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Attr(wire.NamespaceCustom, "maintenance"); s.Kind != wire.KindShared || v.Type != wire.TypeBool {
			t.Fatalf("shared %+v", s)
		}
		// A second PutShared finds the session and leaves it as it is.
		again, err := c.PutShared(ctx, "store-settings", &sdk.Context{})
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != s.ID || again.Version != s.Version || len(again.Attrs[wire.NamespaceCustom]) != 1 {
			t.Fatalf("second put %+v, first %+v", again, s)
		}
		other := newClient(t, url, "read-key")
		found, err := other.GetShared(ctx, "store-settings")
		if err != nil {
			t.Fatal(err)
		}
		if found.ID != s.ID {
			t.Fatalf("found %s, put %s", found.ID, s.ID)
		}
		_, err = other.GetShared(ctx, "no-such-settings")
		wantErr(t, err, sdk.ErrNotFound)
	})

	t.Run("invalid input names the field", func(t *testing.T) {
		_, err := c.SetAttribute(ctx, id, wire.NamespaceCustom, "bad key!", wire.Int(1))
		if e := wantErr(t, err, sdk.ErrInvalidInput); e == nil || !strings.HasPrefix(e.Field, "custom") {
			t.Fatalf("error %+v does not name the field", e)
		}
		_, err = c.Patch(ctx, id, new(sdk.Patch).SetField(wire.FieldCurrency, wire.Int(3)))
		if e := wantErr(t, err, sdk.ErrInvalidInput); e == nil || e.Field != "currency" {
			t.Fatalf("error %+v does not name the field", e)
		}
	})

	t.Run("too large", func(t *testing.T) {
		// A body beyond the origin's request limit (256 KiB by default).
		p := new(sdk.Patch)
		for i := range 200 {
			p.Set(wire.NamespaceCustom, fmt.Sprintf("blob%d", i), wire.Text(strings.Repeat("y", 1900)))
		}
		_, err := c.Patch(ctx, id, p)
		wantErr(t, err, sdk.ErrTooLarge)
		// Values beyond the context limits are refused too, naming the
		// field. (The origin answers invalid_input for them today; the
		// contract's too_large would also do.)
		_, err = c.SetAttribute(ctx, id, wire.NamespaceCustom, "big", wire.Text(strings.Repeat("x", 2001)))
		var e *sdk.Error
		if !errors.As(err, &e) || (!errors.Is(err, sdk.ErrTooLarge) && !errors.Is(err, sdk.ErrInvalidInput)) || !strings.HasPrefix(e.Field, "custom") {
			t.Fatalf("over-long text: %v", err)
		}
	})

	t.Run("unauthorized and forbidden", func(t *testing.T) {
		_, err := newClient(t, url, "wrong-key").Get(ctx, id)
		wantErr(t, err, sdk.ErrUnauthorized)
		_, err = newClient(t, url, "").Get(ctx, id)
		wantErr(t, err, sdk.ErrUnauthorized)
		_, err = newClient(t, url, "read-key").Patch(ctx, id, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("x")))
		wantErr(t, err, sdk.ErrForbidden)
		wantErr(t, c.RevokeCustomer(ctx, "cust-7"), sdk.ErrForbidden)
	})

	t.Run("revoke a customer's sessions", func(t *testing.T) {
		cr, err := c.Create(ctx, "cust-9", nil)
		if err != nil {
			t.Fatal(err)
		}
		if cr.Session.Kind != wire.KindCustomer || cr.Session.CustomerID() != "cust-9" {
			t.Fatalf("created %+v", cr.Session)
		}
		if err := newClient(t, url, "admin-key").RevokeCustomer(ctx, "cust-9"); err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(ctx, cr.Session.ID)
		wantErr(t, err, sdk.ErrGone)
	})

	t.Run("per-session lifetimes", func(t *testing.T) {
		before := time.Now()
		cr, err := c.Create(ctx, "", nil, sdk.WithLifetime(sdk.Lifetime{Idle: 5 * time.Minute, Hard: 2 * time.Hour}))
		if err != nil {
			t.Fatal(err)
		}
		s := cr.Session
		if s.IdleTimeout != 5*time.Minute || s.HardTimeout != 2*time.Hour {
			t.Fatalf("lifetime %v %v", s.IdleTimeout, s.HardTimeout)
		}
		if s.HardDeadline.Before(before.Add(2*time.Hour-time.Second)) || s.HardDeadline.After(time.Now().Add(2*time.Hour+time.Second)) ||
			s.IdleDeadline.After(time.Now().Add(5*time.Minute+time.Second)) {
			t.Fatalf("deadlines %v %v from a lifetime of 5m, 2h", s.IdleDeadline, s.HardDeadline)
		}
		// A lifetime beyond the origin's maximum is refused, by name.
		_, err = c.Create(ctx, "", nil, sdk.WithLifetime(sdk.Lifetime{Idle: 10000 * time.Hour}))
		if e := wantErr(t, err, sdk.ErrInvalidInput); e.Field != "lifetime.idle" {
			t.Fatalf("field %q", e.Field)
		}

		// An upsert that creates the session gives it the lifetime; one
		// that finds it leaves the lifetime as it is.
		nid, _ := wire.NewID()
		s, err = c.Patch(ctx, nid.String(), new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c")), sdk.Upsert(),
			sdk.WithLifetime(sdk.Lifetime{Idle: 90 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		if s.IdleTimeout != 90*time.Second || s.HardTimeout != 0 || s.IdleDeadline.After(time.Now().Add(91*time.Second)) {
			t.Fatalf("upserted lifetime %v %v, idle deadline %v", s.IdleTimeout, s.HardTimeout, s.IdleDeadline)
		}
		s, err = c.SetAttribute(ctx, nid.String(), wire.NamespaceCustom, "n", wire.Int(1), sdk.Upsert(),
			sdk.WithLifetime(sdk.Lifetime{Idle: 3 * time.Minute}))
		if err != nil {
			t.Fatal(err)
		}
		if s.IdleTimeout != 90*time.Second {
			t.Fatalf("a later upsert changed the lifetime to %v", s.IdleTimeout)
		}

		// Login takes a lifetime too: the hard deadline only comes closer.
		in, err := c.Login(ctx, nid.String(), "cust-life", nil, sdk.WithLifetime(sdk.Lifetime{Hard: time.Hour}))
		if err != nil {
			t.Fatal(err)
		}
		if in.Session.HardDeadline.IsZero() || in.Session.HardDeadline.After(time.Now().Add(time.Hour+time.Second)) {
			t.Fatalf("logged-in hard deadline %v, want at most an hour away", in.Session.HardDeadline)
		}

		// A shared session with a lifetime of its own.
		sh, err := c.PutShared(ctx, "expiring-banner", nil, sdk.WithLifetime(sdk.Lifetime{Idle: 24 * time.Hour}))
		if err != nil {
			t.Fatal(err)
		}
		if sh.Kind != wire.KindShared || sh.IdleTimeout != 24*time.Hour || sh.IdleDeadline.IsZero() {
			t.Fatalf("shared %+v", sh)
		}
	})

	t.Run("an upsert in the request that minted the session carries what the edge applied", func(t *testing.T) {
		nid, _ := wire.NewID()
		view := &sdk.View{ID: nid.String(), Kind: wire.KindAnonymous, Generation: 1, Status: sdk.StatusNew}
		view.Fields[wire.FieldSiteCode] = wire.Text("DE")
		view.Fields[wire.FieldCurrency] = wire.Text("EUR")
		view.Fields[wire.FieldLocale] = wire.Text("de-DE")
		view.Attrs[wire.NamespacePublic] = wire.Attrs{}.With("utm_campaign", wire.Text("spring"))
		rctx := sdk.WithWriteRecorder(ctx, sdk.NewWriteRecorderFor(view))
		s, err := c.Patch(rctx, nid.String(), new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c-9")), sdk.Upsert())
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Attr(wire.NamespacePublic, "utm_campaign"); s.Text(wire.FieldSiteCode) != "DE" || s.Text(wire.FieldCurrency) != "EUR" ||
			s.Text(wire.FieldLocale) != "de-DE" || s.Text(wire.FieldCartID) != "c-9" || v.Text != "spring" {
			t.Fatalf("upserted %+v", s.Context)
		}
		// Once the session exists, the view's values are not written again.
		view.Fields[wire.FieldCurrency] = wire.Text("CHF")
		rctx = sdk.WithWriteRecorder(ctx, sdk.NewWriteRecorderFor(view))
		if s, err = c.SetAttribute(rctx, nid.String(), wire.NamespaceCustom, "n", wire.Int(1), sdk.Upsert()); err != nil || s.Text(wire.FieldCurrency) != "EUR" {
			t.Fatalf("a later upsert: %+v, %v", s, err)
		}
		// A view of a session the origin knows (status ok) sends nothing.
		nid, _ = wire.NewID()
		view = &sdk.View{ID: nid.String(), Kind: wire.KindAnonymous, Generation: 1, Status: sdk.StatusOK}
		view.Fields[wire.FieldSiteCode] = wire.Text("DE")
		rctx = sdk.WithWriteRecorder(ctx, sdk.NewWriteRecorderFor(view))
		if s, err = c.Patch(rctx, nid.String(), new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c")), sdk.Upsert()); err != nil || s.Text(wire.FieldSiteCode) != "" {
			t.Fatalf("an upsert with a stored view: %+v, %v", s, err)
		}
	})

	t.Run("metadata: modified", func(t *testing.T) {
		s, err := c.SetAttribute(ctx, id, wire.NamespaceCustom, "touched", wire.Bool(true))
		if err != nil {
			t.Fatal(err)
		}
		if s.Modified.IsZero() || s.Modified.Before(s.Created) {
			t.Fatalf("modified %v, created %v", s.Modified, s.Created)
		}
	})

	t.Run("flush", func(t *testing.T) {
		before, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Flush(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != id || s.Version != before.Version {
			t.Fatalf("flush answered %+v; the session was at version %d", s, before.Version)
		}
		nid, _ := wire.NewID()
		_, err = c.Flush(ctx, nid.String())
		wantErr(t, err, sdk.ErrNotFound)
		if _, err := c.Get(ctx, id); err != nil {
			t.Fatalf("the session did not survive its flush: %v", err)
		}
	})

	t.Run("peers and ending them", func(t *testing.T) {
		var ids []string
		for range 2 {
			cr, err := c.Create(ctx, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Login(ctx, cr.Session.ID, "cust-peers", nil); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, cr.Session.ID)
		}
		peers, err := c.Peers(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		current := 0
		for _, p := range peers {
			if len(p.Handle) != 16 || strings.Contains(ids[0]+ids[1], p.Handle) || p.Kind != wire.KindCustomer || p.Created.IsZero() {
				t.Fatalf("peer %+v", p)
			}
			if p.Current {
				current++
			}
		}
		if len(peers) != 2 || current != 1 || peers[0].Handle == peers[1].Handle {
			t.Fatalf("peers %+v", peers)
		}
		n, err := c.EndPeers(ctx, ids[0])
		if err != nil || n != 1 {
			t.Fatalf("ended %d peers, %v", n, err)
		}
		_, err = c.Get(ctx, ids[1])
		wantErr(t, err, sdk.ErrGone)
		if peers, err := c.Peers(ctx, ids[0]); err != nil || len(peers) != 1 || !peers[0].Current {
			t.Fatalf("peers after ending the others: %+v, %v", peers, err)
		}
		// An anonymous session's list is itself.
		anon, err := c.Create(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if peers, err := c.Peers(ctx, anon.Session.ID); err != nil || len(peers) != 1 || !peers[0].Current || peers[0].Kind != wire.KindAnonymous {
			t.Fatalf("anonymous peers %+v, %v", peers, err)
		}
		if n, err := c.EndPeers(ctx, anon.Session.ID); err != nil || n != 0 {
			t.Fatalf("anonymous session ended %d peers, %v", n, err)
		}
	})

	t.Run("the session's token guards a call", func(t *testing.T) {
		cr, err := c.Create(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		sid, tok := cr.Session.ID, cr.Token
		if _, err := c.Patch(ctx, sid, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("t")), sdk.WithToken(tok)); err != nil {
			t.Fatal(err)
		}
		_, err = c.Logout(ctx, sid, sdk.WithToken(tok))
		wantErr(t, err, sdk.ErrNotLoggedIn)
		_, err = c.Patch(ctx, sid, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("t")), sdk.WithToken("not-a-token"))
		wantErr(t, err, sdk.ErrInvalidToken)
		other, err := c.Create(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Patch(ctx, sid, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("t")), sdk.WithToken(other.Token))
		wantErr(t, err, sdk.ErrTokenMismatch)
		if _, err := c.Login(ctx, sid, "cust-tok", nil, sdk.WithToken(tok)); err != nil {
			t.Fatal(err)
		}
		// The token from before the login is of an older generation.
		_, err = c.Patch(ctx, sid, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("t")), sdk.WithToken(tok))
		if e := wantErr(t, err, sdk.ErrStaleGeneration); e.CurrentGeneration != 2 {
			t.Fatalf("current generation %d, want 2", e.CurrentGeneration)
		}
	})

	t.Run("unavailable", func(t *testing.T) {
		ln := testbin.Listen(t)
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		_, err = newClient(t, "http://"+addr, "app-key").Get(ctx, id)
		wantErr(t, err, sdk.ErrUnavailable)
	})
}

func TestSessionLimitAgainstFakeOrigin(t *testing.T) {
	for _, onLimit := range []string{"refuse", "evictOldest"} {
		t.Run(onLimit, func(t *testing.T) {
			o := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{APIKeys: testKeys, CustomerSessions: sdktest.CustomerSessions{Max: 2, OnLimit: onLimit}})
			defer o.Close()
			runSessionLimit(t, o.URL, onLimit)
		})
	}
}

func TestSessionLimitAgainstOrigin(t *testing.T) {
	for _, onLimit := range []string{"refuse", "evictOldest"} {
		t.Run(onLimit, func(t *testing.T) {
			o := testbin.StartOrigin(t, testbin.OriginConfig{APIKeys: originKeys(),
				Extra: map[string]any{"customerSessions": map[string]any{"max": 2, "onLimit": onLimit}}})
			runSessionLimit(t, o.URL, onLimit)
		})
	}
}

// runSessionLimit logs a customer in three times under a limit of two.
func runSessionLimit(t *testing.T, url, onLimit string) {
	ctx := context.Background()
	c := newClient(t, url, "app-key")
	var ids []string
	for i := range 3 {
		// "Oldest" is by start, in milliseconds: each session starts in a
		// millisecond of its own, so the first one is the oldest.
		for start := time.Now().UnixMilli(); time.Now().UnixMilli() == start; {
			time.Sleep(100 * time.Microsecond)
		}
		cr, err := c.Create(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cr.Session.ID)
		_, err = c.Login(ctx, cr.Session.ID, "cust-limit", nil)
		if i < 2 || onLimit != "refuse" {
			if err != nil {
				t.Fatalf("login %d: %v", i+1, err)
			}
			continue
		}
		wantErr(t, err, sdk.ErrSessionLimit)
		if s, err := c.Get(ctx, cr.Session.ID); err != nil || s.Kind != wire.KindAnonymous {
			t.Fatalf("the refused session: %+v, %v", s, err)
		}
	}
	_, err := c.Get(ctx, ids[0])
	if onLimit == "refuse" {
		if err != nil {
			t.Fatalf("the first session: %v", err)
		}
		return
	}
	// The oldest session made room for the third login.
	wantErr(t, err, sdk.ErrGone)
	for _, id := range ids[1:] {
		if s, err := c.Get(ctx, id); err != nil || s.CustomerID() != "cust-limit" {
			t.Fatalf("session %s: %+v, %v", id, s, err)
		}
	}
}
