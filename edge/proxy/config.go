package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Config configures the edge proxy. The zero value of every field but
// Upstream means its default; New validates it once. docs/edge.md lists the
// JSON keys, flags and environment variables.
type Config struct {
	// Listen is the address of the proxy. Default: ":8080".
	Listen string `json:"listen"`
	// Upstream is the address ("host:port") requests are forwarded to. Required.
	Upstream string `json:"upstream"`
	// Clusters maps cluster names of proxy_http_call to "host:port" addresses.
	Clusters map[string]string `json:"clusters"`
	// Wasm is the filter module. Default: "build/sessionedge.wasm".
	Wasm string `json:"wasm"`
	// PluginConfig is the plugin configuration given to the filter. It
	// holds the token keys: keep it in a file, never on a command line.
	PluginConfig json.RawMessage `json:"pluginConfig"`
	// PluginConfigFile, when set, is read into PluginConfig.
	PluginConfigFile string `json:"pluginConfigFile"`
	// VMs is the number of filter VMs. Default: GOMAXPROCS.
	VMs int `json:"vms"`
	// NoFilter forwards without running the filter (for comparisons).
	NoFilter bool `json:"noFilter"`
	// FailOpen forwards requests unfiltered when the filter fails; the
	// default answers 503.
	FailOpen bool `json:"failOpen"`
	// Admin is the address of /metrics, /healthz and /readyz. Default:
	// "127.0.0.1:9901"; "-" disables it.
	Admin string `json:"admin"`
	// CompilationCacheDir keeps compiled wasm code across restarts (created
	// 0700 when missing). Default: none.
	CompilationCacheDir string `json:"compilationCacheDir"`
	// HeaderTimeout bounds reading a request's headers, from the first byte
	// of a request (or the connection) on. Default: 10s.
	HeaderTimeout wire.Duration `json:"headerTimeout"`
	// ReadTimeout bounds reading a request body, from the end of its
	// headers on. Default: 60s.
	ReadTimeout wire.Duration `json:"readTimeout"`
	// WriteTimeout bounds writing a response. Default: 60s.
	WriteTimeout wire.Duration `json:"writeTimeout"`
	// IdleTimeout bounds keep-alive idleness. Default: 90s.
	IdleTimeout wire.Duration `json:"idleTimeout"`
	// UpstreamTimeout bounds one upstream exchange. Default: 30s.
	UpstreamTimeout wire.Duration `json:"upstreamTimeout"`
	// FilterTimeout bounds how long the filter may hold a request. Default: 10s.
	FilterTimeout wire.Duration `json:"filterTimeout"`
	// ShutdownTimeout bounds graceful shutdown. Default: 10s.
	ShutdownTimeout wire.Duration `json:"shutdownTimeout"`
	// MaxConns caps the client connections served at once. Default: 10000.
	MaxConns int `json:"maxConns"`
	// MaxConnsPerClient caps the connections of one client IP address.
	// Default: 100.
	MaxConnsPerClient int `json:"maxConnsPerClient"`
	// MaxRequestBuffer caps the request body bytes held while the filter
	// reads a body (413 beyond); every other body streams. Default: 8 MiB.
	MaxRequestBuffer int `json:"maxRequestBuffer"`
	// MaxResponseBuffer caps the response body bytes held while the filter
	// reads a body before the headers leave (502 beyond). Default: 16 MiB.
	MaxResponseBuffer int `json:"maxResponseBuffer"`
	// MaxCallsInFlight caps the filter's HTTP calls in flight per cluster;
	// a call beyond it fails at once. Default: 1024.
	MaxCallsInFlight int `json:"maxCallsInFlight"`
	// LogFormat is "text" or "json". Default: "text".
	LogFormat string `json:"logFormat"`
	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel string `json:"logLevel"`
	// Logger overrides LogFormat and LogLevel.
	Logger *slog.Logger `json:"-"`
}

// ErrNoUpstream is returned by New when Config.Upstream is empty.
var ErrNoUpstream = errors.New("proxy: no upstream configured")

// LoadConfigFile reads a JSON configuration file with the keys of Config's
// json tags. An unknown key or a bad value is an error that names the key.
func LoadConfigFile(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := decodeStrict(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// decodeStrict decodes a JSON object into the struct dst field by field, so
// an error names its key; unknown keys are refused.
func decodeStrict(b []byte, dst any) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	v := reflect.ValueOf(dst).Elem()
	fields := map[string]reflect.Value{}
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = v.Field(i)
		}
	}
	for key, raw := range obj {
		f, ok := fields[key]
		if !ok {
			return fmt.Errorf("%s: unknown field", key)
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fmt.Errorf("%s: want %s, not a JSON %s", key, te.Type, te.Value)
			}
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func (c *Config) setDefaults() error {
	if c.Upstream == "" {
		return ErrNoUpstream
	}
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Wasm == "" {
		c.Wasm = "build/sessionedge.wasm"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:9901"
	}
	if c.PluginConfigFile != "" {
		b, err := os.ReadFile(c.PluginConfigFile)
		if err != nil {
			return fmt.Errorf("proxy: plugin config: %w", err)
		}
		c.PluginConfig = b
	}
	def := func(d *wire.Duration, v time.Duration) { *d = d.Or(wire.Duration(v)) }
	def(&c.HeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, 60*time.Second)
	def(&c.WriteTimeout, 60*time.Second)
	def(&c.IdleTimeout, 90*time.Second)
	def(&c.UpstreamTimeout, 30*time.Second)
	def(&c.FilterTimeout, 10*time.Second)
	def(&c.ShutdownTimeout, 10*time.Second)
	positive := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	positive(&c.MaxConns, 10000)
	positive(&c.MaxConnsPerClient, 100)
	positive(&c.MaxRequestBuffer, 8<<20)
	positive(&c.MaxResponseBuffer, 16<<20)
	positive(&c.MaxCallsInFlight, 1024)
	if c.Logger == nil {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(orDefault(c.LogLevel, "info"))); err != nil {
			return fmt.Errorf("proxy: logLevel: %w", err)
		}
		opts := &slog.HandlerOptions{Level: lv}
		switch c.LogFormat {
		case "", "text":
			c.Logger = slog.New(slog.NewTextHandler(os.Stderr, opts))
		case "json":
			c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, opts))
		default:
			return fmt.Errorf("proxy: logFormat %q: want text or json", c.LogFormat)
		}
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
