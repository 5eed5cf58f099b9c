package compare

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The roles Serve runs, each in a process of its own.
const (
	RoleEdgeApp   = "app-edge"   // EdgeApp on net/http
	RoleCookieApp = "app-cookie" // CookieApp on net/http
	RoleAuthz     = "authz"      // Authz on fasthttp
)

// Environment of Serve. Secrets come from the environment, never flags:
// sdk.EnvAssertionKeys (edge and ext_authz app, Authz), sdk.EnvAPIKey
// (Authz), and these.
const (
	EnvListen    = "COMPARE_LISTEN"     // host:port to serve on
	EnvRedis     = "COMPARE_REDIS"      // redis-server host:port (app-cookie)
	EnvHashKey   = "COMPARE_HASH_KEY"   // cookie HMAC key, base64 (app-cookie)
	EnvOrigin    = "COMPARE_ORIGIN"     // origin host:port (authz)
	EnvUpstream  = "COMPARE_UPSTREAM"   // app host:port (authz)
	EnvTokenKeys = "COMPARE_TOKEN_KEYS" // the origin's tokenKeys, {"1": "<base64>"} (authz)
	EnvCookie    = "COMPARE_COOKIE"     // session cookie name (authz; default __Host-sid)
)

// Serve runs role until the process ends. Every role answers GET /healthz
// with 200 once it serves.
func Serve(role string, getenv func(string) string) error {
	addr := getenv(EnvListen)
	if addr == "" {
		return errors.New(EnvListen + " is not set")
	}
	switch role {
	case RoleEdgeApp:
		keys, err := sdk.AssertionKeysFromEnv()
		if err != nil || keys == nil {
			return fmt.Errorf("assertion keys (%s): %v", sdk.EnvAssertionKeys, err)
		}
		return serveHTTP(addr, EdgeApp(keys))
	case RoleCookieApp:
		key, err := base64.StdEncoding.DecodeString(getenv(EnvHashKey))
		if err != nil || len(key) < 32 {
			return fmt.Errorf("%s: want a base64 key of at least 32 bytes", EnvHashKey)
		}
		rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{getenv(EnvRedis)}, DisableCache: true})
		if err != nil {
			return err
		}
		return serveHTTP(addr, &CookieApp{Codec: NewCodec(key), Redis: rc})
	case RoleAuthz:
		a, err := authzFromEnv(getenv)
		if err != nil {
			return err
		}
		srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/healthz" {
				return
			}
			a.Handler(ctx)
		}, ReadTimeout: time.Minute, NoDefaultServerHeader: true}
		return srv.ListenAndServe(addr)
	}
	return fmt.Errorf("unknown role %q", role)
}

func serveHTTP(addr string, app http.Handler) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/", app)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

func authzFromEnv(getenv func(string) string) (*Authz, error) {
	keys, err := sdk.AssertionKeysFromEnv()
	if err != nil || keys == nil {
		return nil, fmt.Errorf("assertion keys (%s): %v", sdk.EnvAssertionKeys, err)
	}
	apiKey, err := sdk.SecretFromEnv(sdk.EnvAPIKey)
	if err != nil || apiKey == nil {
		return nil, fmt.Errorf("origin API key (%s): %v", sdk.EnvAPIKey, err)
	}
	var tk map[string]string
	if err := json.Unmarshal([]byte(getenv(EnvTokenKeys)), &tk); err != nil {
		return nil, fmt.Errorf("%s: %v", EnvTokenKeys, err)
	}
	secrets := map[uint8][]byte{}
	var active uint8
	for id, s := range tk {
		n, err := strconv.ParseUint(id, 10, 8)
		b, err2 := base64.StdEncoding.DecodeString(s)
		if err != nil || err2 != nil {
			return nil, fmt.Errorf("%s: bad key %q", EnvTokenKeys, id)
		}
		secrets[uint8(n)], active = b, uint8(n)
	}
	kr, err := wire.NewKeyring(active, secrets)
	if err != nil {
		return nil, err
	}
	cookie := getenv(EnvCookie)
	if cookie == "" {
		cookie = "__Host-sid"
	}
	return &Authz{Cookie: cookie, Tokens: kr, Keys: keys, APIKey: string(apiKey),
		Origin: NewHostClient(getenv(EnvOrigin), 512), App: NewHostClient(getenv(EnvUpstream), 512)}, nil
}
