package wasmhost

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// Config configures a Host. The zero value of every field means its default;
// New validates the configuration once.
type Config struct {
	// Wasm is the guest module. When empty, WasmPath is read.
	Wasm []byte
	// WasmPath is the path of the guest module, used when Wasm is empty.
	WasmPath string
	// PluginConfig is the plugin configuration (buffer 7), readable by the guest
	// during proxy_on_configure. Default: empty.
	PluginConfig []byte
	// VMConfig is the VM configuration (buffer 6), readable during
	// proxy_on_vm_start. Default: empty.
	VMConfig []byte
	// PluginName is the plugin_name property. Default: "sessionedge".
	PluginName string
	// RootID is the plugin_root_id property. Default: empty, as in Envoy.
	RootID string
	// VMID names the shared-data namespace. Default: "sessionedge".
	VMID string
	// VMs is the number of VM instances. Default: runtime.GOMAXPROCS(0).
	VMs int
	// CompilationCacheDir, when set, keeps wazero's compiled code on disk so a
	// restart does not compile the module again. Default: in-memory only.
	CompilationCacheDir string
	// Clusters resolves cluster names of proxy_http_call. Default: no clusters
	// (every call returns BAD_ARGUMENT).
	Clusters ClusterResolver
	// Clock is the time the guest sees through WASI and
	// proxy_get_current_time_nanoseconds. Default: the system clock.
	Clock Clock
	// Logger receives guest logs (proxy_log) and guest stdout/stderr.
	// Default: slog.Default().
	Logger *slog.Logger
	// LogLevel is the level reported by proxy_get_log_level; guest logs below
	// it are dropped. Default: slog.LevelInfo (proxy-wasm INFO).
	LogLevel slog.Level
	// ManualTicks disables the tick timers: only Host.Tick calls proxy_on_tick.
	// Tests use it to tick deterministically. Default: timers run.
	ManualTicks bool
	// MinRestartInterval is the minimum time between two replacements of a
	// failed VM in the same slot. Default: 1s.
	MinRestartInterval time.Duration
	// PauseTimeout bounds how long a stream paused by the guest waits to be
	// continued or answered, besides the context given to the Stream method;
	// the wait then fails with ErrPauseTimeout. Default: no bound but the
	// context's.
	PauseTimeout time.Duration
	// MaxCallTimeout caps the timeout of proxy_http_call; a guest timeout of 0
	// also means this value. Default: 60s.
	MaxCallTimeout time.Duration
	// SharedData is the store of proxy_get/set_shared_data. Hosts given the
	// same store share it, as Envoy shares one store between every plugin
	// with the same vm_id in a process. Default: a store of this Host only.
	SharedData *SharedData
	// NoSharedData makes the shared-data host functions answer
	// UNIMPLEMENTED, as a host without shared data does, to test how a
	// plugin copes with one. Default: shared data works.
	NoSharedData bool
}

// Clock is the source of guest-visible time. Implementations must be safe for
// concurrent use.
type Clock interface {
	// Now returns the wall-clock time.
	Now() time.Time
	// Nanotime returns a monotonic reading in nanoseconds.
	Nanotime() int64
}

// ClusterResolver finds the Cluster for a name used in proxy_http_call.
type ClusterResolver interface {
	// Cluster returns the cluster called name, or nil when there is none.
	Cluster(name string) Cluster
}

// Cluster answers HTTP calls made by the guest with proxy_http_call.
type Cluster interface {
	// RoundTrip performs req and fills resp. An error means the call failed;
	// the guest then sees num_headers == 0. RoundTrip runs on its own goroutine
	// and must honour ctx, which carries the call's timeout.
	RoundTrip(ctx context.Context, req *CallRequest, resp *CallResponse) error
}

// ClusterFunc adapts a function to Cluster.
type ClusterFunc func(ctx context.Context, req *CallRequest, resp *CallResponse) error

// RoundTrip calls f.
func (f ClusterFunc) RoundTrip(ctx context.Context, req *CallRequest, resp *CallResponse) error {
	return f(ctx, req, resp)
}

// Clusters is a fixed ClusterResolver.
type Clusters map[string]Cluster

// Cluster returns c[name].
func (c Clusters) Cluster(name string) Cluster { return c[name] }

// CallRequest is an HTTP call made by the guest. Headers include the
// pseudo-headers :method, :path and :authority. It is owned by the host and
// valid only during RoundTrip.
type CallRequest struct {
	Cluster  string
	Headers  HeaderMap
	Body     []byte
	Trailers HeaderMap
	Timeout  time.Duration
}

// CallResponse is the answer to a CallRequest. Set the status as the
// :status pseudo-header (SetStatus does it). It is owned by the host.
type CallResponse struct {
	Headers  HeaderMap
	Body     []byte
	Trailers HeaderMap
}

// SetStatus sets the :status pseudo-header.
func (r *CallResponse) SetStatus(code int) {
	_ = r.Headers.Set(":status", strconv.Itoa(code))
}

type systemClock struct{ start time.Time }

func (c systemClock) Now() time.Time  { return time.Now() }
func (c systemClock) Nanotime() int64 { return int64(time.Since(c.start)) }
