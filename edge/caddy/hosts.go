package caddy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	caddy2 "github.com/caddyserver/caddy/v2"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
)

// hosts holds the running filters by the digest of what makes them (the
// module's bytes and every Host setting): handlers with the same filter and
// configuration share one Host, in one Caddy configuration and across
// reloads, so a reload that leaves the filter alone keeps its VMs and their
// caches.
var hosts = caddy2.NewUsagePool()

// sharedData holds the shared-data stores by VM id: hosts with the same
// vm_id share one store, as Envoy shares one between the plugins of a
// vm_id, and it outlives a reload that replaces the host.
var sharedData = caddy2.NewUsagePool()

// hostSpec is everything a Host is made of; two handlers with equal specs
// share one Host.
type hostSpec struct {
	WasmDigest       string            `json:"wasmDigest"`
	PluginConfig     []byte            `json:"pluginConfig"`
	VMConfig         string            `json:"vmConfig"`
	PluginName       string            `json:"pluginName"`
	RootID           string            `json:"rootID"`
	VMID             string            `json:"vmID"`
	VMs              int               `json:"vms"`
	Clusters         map[string]string `json:"clusters"`
	MaxCallsInFlight int               `json:"maxCallsInFlight"`
	MaxCallTimeout   time.Duration     `json:"maxCallTimeout"`
	FilterTimeout    time.Duration     `json:"filterTimeout"`
	CompilationCache string            `json:"compilationCache"`
	LogLevel         slog.Level        `json:"logLevel"`

	wasm []byte
	// configField names where the plugin configuration came from, for
	// the error of a filter that refuses it.
	configField string
}

// key is the pool key of the spec: a digest, so the key held in memory is
// not the configuration itself (which holds secrets).
func (s *hostSpec) key() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// pooledHost is one running filter with its clusters; it is destroyed when
// the last handler using it is cleaned up.
type pooledHost struct {
	host     *wasmhost.Host
	name     string // the plugin name, the "plugin" label of the metrics
	clusters []wasmhost.NamedCluster
	log      *guestLog
	vmID     string

	mu    sync.Mutex
	users []hostUser // the handlers using the host, oldest first
}

type hostUser struct {
	h   *Handler
	log *slog.Logger
}

// attach records that h uses the host: the filter's logs go to h's logger,
// the newest configuration's.
func (p *pooledHost) attach(h *Handler, l *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users = append(p.users, hostUser{h, l})
	p.log.target.Store(l)
}

// detach forgets h; the logs go back to the newest remaining user's logger,
// so a configuration that failed to load (and is cleaned up at once) does
// not keep them.
func (p *pooledHost) detach(h *Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, u := range p.users {
		if u.h == h {
			p.users = append(p.users[:i], p.users[i+1:]...)
			break
		}
	}
	if n := len(p.users); n > 0 {
		p.log.target.Store(p.users[n-1].log)
	}
}

// newPooledHost compiles the module and starts its VMs. A plugin that
// refuses its configuration is an error naming the field the
// configuration came from, with the filter's own last error message (the
// sessionedge filter names the offending key in it).
func newPooledHost(s *hostSpec, logger *slog.Logger) (*pooledHost, error) {
	p := &pooledHost{name: s.PluginName, log: &guestLog{}, vmID: s.VMID}
	p.log.target.Store(logger)
	var clusters wasmhost.Clusters
	clusters, p.clusters = wasmhost.NewHTTPClusters(s.Clusters, s.MaxCallsInFlight)
	sd, _, err := sharedData.LoadOrNew(s.VMID, func() (caddy2.Destructor, error) {
		return sharedStore{wasmhost.NewSharedData()}, nil
	})
	if err != nil {
		return nil, err
	}
	p.log.recording.Store(true)
	host, err := wasmhost.New(context.Background(), wasmhost.Config{
		Wasm:                s.wasm,
		PluginConfig:        s.PluginConfig,
		VMConfig:            []byte(s.VMConfig),
		PluginName:          s.PluginName,
		RootID:              s.RootID,
		VMID:                s.VMID,
		VMs:                 s.VMs,
		CompilationCacheDir: s.CompilationCache,
		Clusters:            clusters,
		Logger:              slog.New(p.log),
		LogLevel:            s.LogLevel,
		PauseTimeout:        s.FilterTimeout,
		MaxCallTimeout:      s.MaxCallTimeout,
		SharedData:          sd.(sharedStore).SharedData,
	})
	p.log.recording.Store(false)
	if err != nil {
		_, _ = sharedData.Delete(s.VMID)
		return nil, p.explain(s, err)
	}
	p.host = host
	logger.Info("proxy_wasm: filter started", "plugin", s.PluginName, "vm_id", s.VMID, "vms", host.VMs(), "wasm_sha256", s.WasmDigest[:16])
	return p, nil
}

// explain names the configuration field behind an error of wasmhost.New.
func (p *pooledHost) explain(s *hostSpec, err error) error {
	why := p.log.lastError()
	if why != "" {
		why = ": " + why
	}
	switch {
	case errors.Is(err, wasmhost.ErrConfigRejected):
		return fmt.Errorf("%s: the filter rejected its configuration%s", s.configField, why)
	case errors.Is(err, wasmhost.ErrVMStartRejected):
		return fmt.Errorf("vm_config: the filter rejected its VM configuration%s", why)
	case errors.Is(err, wasmhost.ErrABIVersion), errors.Is(err, wasmhost.ErrNoAllocator), errors.Is(err, wasmhost.ErrNoMemory):
		return fmt.Errorf("wasm: not a proxy-wasm filter: %w", err)
	}
	return fmt.Errorf("wasm: %w%s", err, why)
}

// Destruct stops the filter: tick timers, HTTP calls, then the VMs.
func (p *pooledHost) Destruct() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.host.Close(ctx)
	_, _ = sharedData.Delete(p.vmID)
	return err
}

type sharedStore struct{ *wasmhost.SharedData }

func (sharedStore) Destruct() error { return nil }

// guestLog is the slog.Handler of a pooled host: it sends the filter's logs
// to the logger of the configuration that uses the host now (a reload hands
// it over to the new one), and while the host starts it keeps the last
// error message, which says why a filter refused its configuration.
type guestLog struct {
	target    atomic.Pointer[slog.Logger]
	recording atomic.Bool
	mu        sync.Mutex
	last      string
}

func (g *guestLog) lastError() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

func (g *guestLog) Enabled(ctx context.Context, l slog.Level) bool {
	return g.recording.Load() && l >= slog.LevelError || g.target.Load().Enabled(ctx, l)
}

func (g *guestLog) Handle(ctx context.Context, r slog.Record) error {
	return g.handle(ctx, r, nil, nil)
}

func (g *guestLog) handle(ctx context.Context, r slog.Record, attrs []slog.Attr, groups []string) error {
	if g.recording.Load() && r.Level >= slog.LevelError {
		g.mu.Lock()
		g.last = r.Message
		g.mu.Unlock()
	}
	h := g.target.Load().Handler()
	if !h.Enabled(ctx, r.Level) {
		return nil
	}
	for _, name := range groups {
		h = h.WithGroup(name)
	}
	if len(attrs) > 0 {
		h = h.WithAttrs(attrs)
	}
	return h.Handle(ctx, r)
}

func (g *guestLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &guestLogWith{g: g, attrs: attrs}
}

func (g *guestLog) WithGroup(name string) slog.Handler {
	return &guestLogWith{g: g, groups: []string{name}}
}

// guestLogWith is a guestLog with attributes or groups added.
type guestLogWith struct {
	g      *guestLog
	attrs  []slog.Attr
	groups []string
}

func (w *guestLogWith) Enabled(ctx context.Context, l slog.Level) bool { return w.g.Enabled(ctx, l) }

func (w *guestLogWith) Handle(ctx context.Context, r slog.Record) error {
	return w.g.handle(ctx, r, w.attrs, w.groups)
}

func (w *guestLogWith) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &guestLogWith{g: w.g, attrs: append(append([]slog.Attr(nil), w.attrs...), attrs...), groups: w.groups}
}

func (w *guestLogWith) WithGroup(name string) slog.Handler {
	return &guestLogWith{g: w.g, attrs: w.attrs, groups: append(append([]string(nil), w.groups...), name)}
}

// Interface guards
var (
	_ caddy2.Destructor = (*pooledHost)(nil)
	_ caddy2.Destructor = sharedStore{}
	_ slog.Handler      = (*guestLog)(nil)
	_ slog.Handler      = (*guestLogWith)(nil)
)
