package compare_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/internal/compare"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/internal/testenv"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// serveEnv makes the test binary one of the comparison's servers
// (compare.Serve) instead of running tests: every server is a process of
// its own, as the edge, the origin and redis-server are.
const serveEnv = "COMPARE_SERVE"

func TestMain(m *testing.M) {
	if role := os.Getenv(serveEnv); role != "" {
		profile(role)
		if err := compare.Serve(role, os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testbin.Main(m))
}

// profile writes a CPU profile of a server process to
// $COMPARE_PROFILE_DIR/<role>.pprof when that is set, until SIGTERM (which
// testbin sends to stop it).
func profile(role string) {
	dir := os.Getenv("COMPARE_PROFILE_DIR")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, role+".pprof"))
	if err != nil || pprof.StartCPUProfile(f) != nil {
		fmt.Fprintln(os.Stderr, "compare: cannot profile:", err)
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(0)
	}()
}

const (
	host = "shop.example"
	path = "/products/42"
)

// mode is one way of serving the app, with the clients that load it.
type mode struct {
	name    string
	addr    string
	clients []compare.Client
}

// rig is everything the comparison runs: the modes and the processes
// whose CPU time is measured.
type rig struct {
	modes []*mode // edge, cookie+redis, ext_authz, cookie+redis behind the proxy
	procs []proc
}

type proc struct {
	name string
	pid  int
}

// start starts the origin (Pebble), the edge proxy with the filter,
// redis-server, the two apps, the ext_authz proxy and the edge proxy
// without the filter in front of the cookie+redis app, each a process on
// loopback, and creates sessions sessions: each at the origin (half of them
// logged in, each with a cart) and, the same, in Redis for the
// cookie+redis app.
func start(t testing.TB, sessions int) *rig {
	t.Helper()
	redisBin := testenv.Tool(t, "redis-server", "apt-get install redis-server")
	appKey, edgeKey, authzKey := testbin.RandomKey("app"), testbin.RandomKey("edge"), testbin.RandomKey("authz")
	origin := testbin.StartOrigin(t, testbin.OriginConfig{APIKeys: []testbin.APIKey{
		{Name: "app", Key: appKey, Scopes: []string{"sessions:read", "sessions:write"}},
		{Name: "edge", Key: edgeKey, Scopes: []string{"edge:sync", "edge:selfservice"}},
		{Name: "authz", Key: authzKey, Scopes: []string{"sessions:read"}},
	}})
	assertKey := base64.StdEncoding.EncodeToString(testbin.RandomSecret())
	assertion := map[string]any{"keys": map[string]string{"1": assertKey}, "activeKey": 1}
	assertJSON, _ := json.Marshal(assertion)
	child := func(name, role string, env ...string) (*testbin.Process, string) {
		addr := testbin.FreeAddr(t)
		p := testbin.Start(t, testbin.Cmd{Name: name, Path: os.Args[0], Ready: "http://" + addr + "/healthz",
			Env: append([]string{serveEnv + "=" + role, compare.EnvListen + "=" + addr, sdk.EnvAssertionKeys + "=" + string(assertJSON)}, env...)})
		return p, addr
	}

	app, appAddr := child("app", compare.RoleEdgeApp)
	edge := testbin.StartEdge(t, testbin.EdgeConfig{Upstream: appAddr, Origin: origin, EdgeKey: edgeKey,
		Plugin: map[string]any{"assertion": assertion, "forward": map[string]any{"mode": forwardMode()}}})
	tokenKeys := map[string]string{}
	for id, k := range origin.Cfg.Keys {
		tokenKeys[strconv.Itoa(int(id))] = base64.StdEncoding.EncodeToString(k)
	}
	tk, _ := json.Marshal(tokenKeys)
	authz, authzAddr := child("ext_authz", compare.RoleAuthz, sdk.EnvAPIKey+"="+authzKey,
		compare.EnvOrigin+"="+strings.TrimPrefix(origin.URL, "http://"), compare.EnvUpstream+"="+appAddr, compare.EnvTokenKeys+"="+string(tk))

	redis, redisAddr, rc := startRedis(t, redisBin)
	hashKey := testbin.RandomSecret()
	cookieApp, cookieAddr := child("app (cookie+redis)", compare.RoleCookieApp,
		compare.EnvRedis+"="+redisAddr, compare.EnvHashKey+"="+base64.StdEncoding.EncodeToString(hashKey))

	// The cookie+redis app behind the same edge proxy without the filter:
	// what an app that already has a proxy in front of it pays.
	proxy := testbin.StartEdge(t, testbin.EdgeConfig{Upstream: cookieAddr, Origin: origin, EdgeKey: edgeKey, Args: []string{"-no-filter"}})

	api, err := sdk.New(sdk.Config{BaseURL: origin.URL, APIKey: appKey})
	if err != nil {
		t.Fatal(err)
	}
	store := &compare.CookieApp{Codec: compare.NewCodec(hashKey), Redis: rc}
	r := &rig{modes: []*mode{
		{name: "edge", addr: strings.TrimPrefix(edge.URL, "http://")},
		{name: "cookie+redis", addr: cookieAddr},
		{name: "ext_authz", addr: authzAddr},
		{name: "cookie+redis behind the proxy", addr: strings.TrimPrefix(proxy.URL, "http://")},
	}}
	ctx := context.Background()
	for i := range sessions {
		customer, kind := "", wire.KindAnonymous
		if i%2 == 0 {
			customer, kind = fmt.Sprintf("cust-%d", i), wire.KindCustomer
		}
		cart := fmt.Sprintf("cart-%04d", i)
		var c sdk.Context
		c.Fields[wire.FieldCartID] = wire.Text(cart)
		iss, err := api.Create(ctx, customer, &c)
		if err != nil {
			t.Fatalf("creating session %d at the origin: %v", i, err)
		}
		want := compare.Render(nil, compare.Page{ID: iss.Session.ID, Kind: kind.String(), Cart: cart})
		cookie, err := store.Store(ctx, iss.Session.ID, compare.Blob{Kind: kind.String(), CustomerID: customer, CartID: cart,
			Site: "DE", Currency: "EUR", Locale: "de-DE", Location: "DE"})
		if err != nil {
			t.Fatalf("storing session %d in redis: %v", i, err)
		}
		edgeClient := compare.Client{Cookie: "__Host-sid=" + iss.Token, Want: want}
		r.modes[0].clients = append(r.modes[0].clients, edgeClient)
		r.modes[1].clients = append(r.modes[1].clients, compare.Client{Cookie: compare.CookieName + "=" + cookie, Want: want})
		r.modes[2].clients = append(r.modes[2].clients, edgeClient)
		r.modes[3].clients = r.modes[1].clients
	}
	for _, p := range []struct {
		name string
		p    *testbin.Process
	}{{"edge", edge.Process}, {"origin", origin.Process}, {"app", app}, {"ext_authz", authz}, {"app (cookie+redis)", cookieApp}, {"redis-server", redis}, {"proxy (filter off)", proxy.Process}} {
		r.procs = append(r.procs, proc{p.name, p.p.Pid()})
	}
	r.procs = append(r.procs, proc{"load generator", os.Getpid()})
	return r
}

// forwardMode is the filter's forward.mode: "compact" (the mode for apps
// with the SDK middleware; Authz forwards the same headers), or
// COMPARE_FORWARD_MODE.
func forwardMode() string {
	if m := os.Getenv("COMPARE_FORWARD_MODE"); m != "" {
		return m
	}
	return "compact"
}

// startRedis starts redis-server without persistence on a free loopback
// port and returns it with a client.
func startRedis(t testing.TB, bin string) (*testbin.Process, string, rueidis.Client) {
	t.Helper()
	addr := testbin.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	p := testbin.Start(t, testbin.Cmd{Name: "redis-server", Path: bin,
		Args: []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err == nil {
			t.Cleanup(rc.Close)
			return p, addr, rc
		}
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("redis-server on %s: %v\n%s", addr, err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEveryModeServesItsSession: a few hundred requests through each mode,
// every one answered 200 with the page of the client's own session (its id,
// kind and cart), so the benchmark measures the app's page and not error
// pages; and the check itself catches another session's page.
func TestEveryModeServesItsSession(t *testing.T) {
	r := start(t, 8)
	const n = 400
	for _, m := range r.modes {
		res := compare.Load(m.addr, host, path, m.clients, time.Minute, n)
		if res.Bad != 0 || res.Requests != n {
			t.Errorf("%s: %d good answers of %d, %d bad (first: %s)", m.name, res.Requests, n, res.Bad, res.FirstBad)
		}
		// The same cookies expecting each other's pages: every answer is wrong.
		swapped := make([]compare.Client, len(m.clients))
		for i, c := range m.clients {
			swapped[i] = compare.Client{Cookie: c.Cookie, Want: m.clients[(i+1)%len(m.clients)].Want}
		}
		if res := compare.Load(m.addr, host, path, swapped, time.Minute, 40); res.Bad != 40 || res.Requests != 0 {
			t.Errorf("%s with another session's page expected: %d good, %d bad; want 0 and 40", m.name, res.Requests, res.Bad)
		}
	}
	// Without a valid cookie no mode serves a session page.
	for _, m := range r.modes[1:] {
		bogus := []compare.Client{{Cookie: "__Host-sid=x; session=x", Want: m.clients[0].Want}}
		if res := compare.Load(m.addr, host, path, bogus, time.Minute, 5); res.Bad != 5 || !strings.HasPrefix(res.FirstBad, "status 401") {
			t.Errorf("%s without a valid cookie: %d bad, first %q; want 5, status 401", m.name, res.Bad, res.FirstBad)
		}
	}
}
