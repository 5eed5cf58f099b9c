package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Config configures the edge proxy. The zero value of every field but
// Upstream means its default; New validates it once.
type Config struct {
	// Listen is the address of the proxy. Default: ":8080".
	Listen string `json:"listen"`
	// Upstream is the address ("host:port") requests are forwarded to. Required.
	Upstream string `json:"upstream"`
	// Clusters maps cluster names of proxy_http_call to "host:port" addresses.
	Clusters map[string]string `json:"clusters"`
	// Wasm is the filter module. Default: "build/sessionedge.wasm".
	Wasm string `json:"wasm"`
	// PluginConfig is the plugin configuration given to the filter.
	// Default: empty.
	PluginConfig json.RawMessage `json:"plugin_config"`
	// PluginConfigFile, when set, is read into PluginConfig.
	PluginConfigFile string `json:"plugin_config_file"`
	// VMs is the number of filter VMs. Default: GOMAXPROCS.
	VMs int `json:"vms"`
	// NoFilter forwards without running the filter (for comparisons).
	NoFilter bool `json:"no_filter"`
	// FailOpen forwards requests unfiltered when the filter fails; the
	// default answers 503.
	FailOpen bool `json:"fail_open"`
	// Admin is the address of /metrics, /healthz and /readyz. Default:
	// "127.0.0.1:9901"; "-" disables it.
	Admin string `json:"admin"`
	// CompilationCacheDir keeps compiled wasm code across restarts. Default: none.
	CompilationCacheDir string `json:"compilation_cache_dir"`
	// ReadTimeout bounds reading a client request. Default: 30s.
	ReadTimeout Duration `json:"read_timeout"`
	// WriteTimeout bounds writing a response. Default: 30s.
	WriteTimeout Duration `json:"write_timeout"`
	// IdleTimeout bounds keep-alive idleness. Default: 90s.
	IdleTimeout Duration `json:"idle_timeout"`
	// UpstreamTimeout bounds one upstream exchange. Default: 30s.
	UpstreamTimeout Duration `json:"upstream_timeout"`
	// FilterTimeout bounds how long the filter may hold a request. Default: 10s.
	FilterTimeout Duration `json:"filter_timeout"`
	// ShutdownTimeout bounds graceful shutdown. Default: 10s.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// MaxRequestBodySize caps request bodies. Default: 8 MiB.
	MaxRequestBodySize int `json:"max_request_body_size"`
	// MaxResponseBufferSize caps a response body the filter wants whole
	// before the headers leave (a guest that stops iteration on response
	// headers). Default: 16 MiB.
	MaxResponseBufferSize int `json:"max_response_buffer_size"`
	// LogFormat is "text" or "json". Default: "text".
	LogFormat string `json:"log_format"`
	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel string `json:"log_level"`
	// Logger overrides LogFormat and LogLevel.
	Logger *slog.Logger `json:"-"`
}

// Duration is a time.Duration that reads "1.5s"-style strings from JSON.
type Duration time.Duration

// UnmarshalJSON accepts a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("proxy: duration must be a string like \"10s\"")
	}
	*d = Duration(n)
	return nil
}

// ErrNoUpstream is returned by New when Config.Upstream is empty.
var ErrNoUpstream = errors.New("proxy: no upstream configured")

// LoadConfigFile reads a JSON configuration file with the field names of
// Config's json tags.
func LoadConfigFile(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("proxy: config file %s: %w", path, err)
	}
	return c, nil
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
	def := func(d *Duration, v time.Duration) {
		if *d <= 0 {
			*d = Duration(v)
		}
	}
	def(&c.ReadTimeout, 30*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.IdleTimeout, 90*time.Second)
	def(&c.UpstreamTimeout, 30*time.Second)
	def(&c.FilterTimeout, 10*time.Second)
	def(&c.ShutdownTimeout, 10*time.Second)
	if c.MaxRequestBodySize <= 0 {
		c.MaxRequestBodySize = 8 << 20
	}
	if c.MaxResponseBufferSize <= 0 {
		c.MaxResponseBufferSize = 16 << 20
	}
	if c.Logger == nil {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(orDefault(c.LogLevel, "info"))); err != nil {
			return fmt.Errorf("proxy: log level: %w", err)
		}
		opts := &slog.HandlerOptions{Level: lv}
		switch c.LogFormat {
		case "", "text":
			c.Logger = slog.New(slog.NewTextHandler(os.Stderr, opts))
		case "json":
			c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, opts))
		default:
			return fmt.Errorf("proxy: log format %q: want text or json", c.LogFormat)
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

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
