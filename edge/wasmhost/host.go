package wasmhost

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// Host runs one proxy-wasm plugin: the module is compiled once and
// instantiated Config.VMs times. Each VM has its own root context and tick;
// a Stream is pinned to one VM for its lifetime. A Host is safe for concurrent
// use.
type Host struct {
	cfg      Config
	logger   *slog.Logger
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	cache    wazero.CompilationCache
	clock    Clock

	ctx    context.Context // cancelled by Close; parent of every HTTP call
	cancel context.CancelFunc

	slots  []atomic.Pointer[vm]
	rr     atomic.Uint32
	vmGen  atomic.Uint32
	closed atomic.Bool

	calls    sync.WaitGroup // HTTP-call goroutines
	inflight atomic.Int64   // HTTP calls not yet delivered
	paused   atomic.Int64   // streams waiting for the guest
	bg       sync.WaitGroup // tick loops and VM replacements

	shared  *SharedData
	metrics metricRegistry

	streamPool sync.Pool
	restarts   atomic.Int64
}

// New compiles the module, instantiates the VMs and runs their root
// lifecycle (proxy_on_context_create, proxy_on_vm_start, proxy_on_configure).
// It fails when a VM rejects its configuration.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if len(cfg.Wasm) == 0 {
		if cfg.WasmPath == "" {
			return nil, ErrNoWasm
		}
		b, err := os.ReadFile(cfg.WasmPath)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: cannot read module: %w", err)
		}
		cfg.Wasm = b
	}
	if cfg.PluginName == "" {
		cfg.PluginName = "sessionedge"
	}
	if cfg.VMID == "" {
		cfg.VMID = "sessionedge"
	}
	if cfg.VMs <= 0 {
		cfg.VMs = runtime.GOMAXPROCS(0)
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{start: time.Now()}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MinRestartInterval <= 0 {
		cfg.MinRestartInterval = time.Second
	}
	if cfg.MaxCallTimeout <= 0 {
		cfg.MaxCallTimeout = 60 * time.Second
	}
	h := &Host{cfg: cfg, logger: cfg.Logger, clock: cfg.Clock}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.shared = cfg.SharedData
	if h.shared == nil {
		h.shared = NewSharedData()
	}
	h.streamPool.New = func() any { return &Stream{resume: make(chan Verdict, 1)} }

	rc := wazero.NewRuntimeConfig()
	if cfg.CompilationCacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CompilationCacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache: %w", err)
		}
		h.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	ok := false
	defer func() {
		if !ok {
			h.cancel()
			_ = h.rt.Close(ctx)
		}
	}()
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		return nil, fmt.Errorf("wasmhost: wasi: %w", err)
	}
	compiled, err := h.rt.CompileModule(ctx, cfg.Wasm)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: compile: %w", err)
	}
	h.compiled = compiled
	exports := compiled.ExportedFunctions()
	if exports["proxy_abi_version_0_2_1"] == nil && exports["proxy_abi_version_0_2_0"] == nil {
		return nil, ErrABIVersion
	}
	if exports["proxy_on_memory_allocate"] == nil && exports["malloc"] == nil {
		return nil, ErrNoAllocator
	}
	if err := h.instantiateEnv(ctx, compiled); err != nil {
		return nil, err
	}
	h.slots = make([]atomic.Pointer[vm], cfg.VMs)
	for i := range h.slots {
		v, err := h.newVM(i)
		if err != nil {
			for j := 0; j < i; j++ {
				h.slots[j].Load().close()
			}
			return nil, err
		}
		h.slots[i].Store(v)
	}
	for i := range h.slots {
		h.startTicks(h.slots[i].Load())
	}
	ok = true
	return h, nil
}

// VMs returns the number of VM slots.
func (h *Host) VMs() int { return len(h.slots) }

// HealthyVMs returns the number of VMs that can take new streams.
func (h *Host) HealthyVMs() int {
	n := 0
	for i := range h.slots {
		if v := h.slots[i].Load(); v != nil && !v.broken.Load() {
			n++
		}
	}
	return n
}

// Restarts returns how many failed VMs have been replaced.
func (h *Host) Restarts() int64 { return h.restarts.Load() }

// InflightCalls returns the number of HTTP calls not yet delivered to the guest.
func (h *Host) InflightCalls() int64 { return h.inflight.Load() }

// PausedStreams returns the number of streams waiting for the guest to
// continue or answer them (paused at the end of a phase, such as a request
// waiting for an HTTP call of the filter).
func (h *Host) PausedStreams() int64 { return h.paused.Load() }

// TickPeriod returns the tick period the plugin asked for with
// proxy_set_tick_period_milliseconds on the first healthy VM (0: no tick).
func (h *Host) TickPeriod() time.Duration {
	for i := range h.slots {
		if v := h.slots[i].Load(); v != nil && !v.broken.Load() {
			return time.Duration(v.tickPeriod.Load()) * time.Millisecond
		}
	}
	return 0
}

// Tick calls proxy_on_tick on the root context of every healthy VM, in order.
func (h *Host) Tick() {
	for i := range h.slots {
		if v := h.slots[i].Load(); v != nil {
			v.tick()
		}
	}
}

// WaitCalls blocks until no HTTP call is in flight or ctx is done.
func (h *Host) WaitCalls(ctx context.Context) error {
	for h.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Microsecond):
		}
	}
	return nil
}

// SharedData returns a copy of the shared-data value of key and its CAS.
func (h *Host) SharedData(key string) ([]byte, uint32, bool) { return h.shared.Get(key) }

// Close stops the tick timers, cancels HTTP calls, calls proxy_on_done and
// proxy_on_delete on every root context and frees the runtime. Streams still
// open fail with ErrVMFailed.
func (h *Host) Close(ctx context.Context) error {
	if h.closed.Swap(true) {
		return nil
	}
	h.cancel()
	h.calls.Wait()
	for i := range h.slots {
		if v := h.slots[i].Load(); v != nil {
			v.shutdown()
		}
	}
	h.bg.Wait()
	for i := range h.slots {
		if v := h.slots[i].Load(); v != nil {
			v.close()
		}
	}
	err := h.rt.Close(ctx)
	if h.cache != nil {
		_ = h.cache.Close(ctx)
	}
	return err
}

func (h *Host) pickVM() (*vm, error) {
	n := uint32(len(h.slots))
	start := h.rr.Add(1)
	for i := uint32(0); i < n; i++ {
		v := h.slots[(start+i)%n].Load()
		if v != nil && !v.broken.Load() {
			return v, nil
		}
	}
	return nil, ErrNoHealthyVM
}

func (h *Host) newVM(slot int) (*vm, error) {
	gen := h.vmGen.Add(1)
	v := &vm{
		host:       h,
		slot:       slot,
		streams:    make(map[uint32]*Stream),
		failed:     make(chan struct{}),
		stop:       make(chan struct{}),
		tickNotify: make(chan struct{}, 1),
		stack:      make([]uint64, 10),
		allocStack: make([]uint64, 2),
	}
	v.ctx = context.WithValue(context.Background(), vmKey{}, v)
	clock := h.clock
	out := &guestOutput{logger: h.logger, slot: slot, level: slog.LevelInfo, name: "stdout"}
	errOut := &guestOutput{logger: h.logger, slot: slot, level: slog.LevelWarn, name: "stderr"}
	mc := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("vm-%d-%d", slot, gen)).
		WithStartFunctions().
		WithStdout(out).
		WithStderr(errOut).
		WithWalltime(func() (int64, int32) {
			t := clock.Now()
			return t.Unix(), int32(t.Nanosecond())
		}, sys.ClockResolution(1)).
		WithNanotime(clock.Nanotime, sys.ClockResolution(1)).
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	mod, err := h.rt.InstantiateModule(v.ctx, h.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: instantiate: %w", err)
	}
	v.mod = mod
	v.mem = mod.Memory()
	if v.mem == nil {
		_ = mod.Close(v.ctx)
		return nil, ErrNoMemory
	}
	v.lookupExports()
	if err := v.start(); err != nil {
		_ = mod.Close(v.ctx)
		return nil, err
	}
	return v, nil
}

func (h *Host) startTicks(v *vm) {
	if h.cfg.ManualTicks {
		return
	}
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		v.tickLoop()
	}()
}

// replace swaps a failed VM for a new one, no sooner than MinRestartInterval
// after the previous replacement of the same slot.
func (h *Host) replace(old *vm) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		old.shutdown()
		wait := h.cfg.MinRestartInterval
		for {
			select {
			case <-h.ctx.Done():
				old.close()
				return
			case <-time.After(wait):
			}
			v, err := h.newVM(old.slot)
			if err != nil {
				h.logger.Error("wasmhost: cannot replace VM", "slot", old.slot, "err", err)
				continue
			}
			if h.closed.Load() || !h.slots[old.slot].CompareAndSwap(old, v) {
				v.close()
				return
			}
			h.restarts.Add(1)
			h.logger.Warn("wasmhost: replaced failed VM", "slot", old.slot)
			old.close()
			h.startTicks(v)
			return
		}
	}()
}

// guestOutput turns guest stdout/stderr writes into log records.
type guestOutput struct {
	logger *slog.Logger
	slot   int
	level  slog.Level
	name   string
}

func (g *guestOutput) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	if len(p) > 0 && g.logger.Enabled(context.Background(), g.level) {
		g.logger.Log(context.Background(), g.level, string(p), "source", "guest "+g.name, "vm", g.slot)
	}
	return n, nil
}

var _ io.Writer = (*guestOutput)(nil)

// envImport describes one host function of module "env".
type envImport struct {
	name   string
	params int // number of i32 params, except those listed in i64
	i64    int // index of an i64 param, or -1
	fn     api.GoModuleFunc
}

func (h *Host) instantiateEnv(ctx context.Context, compiled wazero.CompiledModule) error {
	b := h.rt.NewHostModuleBuilder("env")
	i32 := api.ValueTypeI32
	defined := make(map[string]bool)
	for _, imp := range envImports {
		params := make([]api.ValueType, imp.params)
		for i := range params {
			params[i] = i32
			if i == imp.i64 {
				params[i] = api.ValueTypeI64
			}
		}
		b.NewFunctionBuilder().WithGoModuleFunction(imp.fn, params, []api.ValueType{i32}).Export(imp.name)
		defined[imp.name] = true
	}
	// Imports this host does not know get a stub that returns UNIMPLEMENTED,
	// so a guest built against a newer ABI still links.
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != "env" || defined[name] {
			continue
		}
		results := f.ResultTypes()
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			if len(results) > 0 {
				stack[0] = uint64(proxywasm.StatusUnimplemented)
			}
		}), f.ParamTypes(), results).Export(name)
		defined[name] = true
	}
	_, err := b.Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("wasmhost: env module: %w", err)
	}
	return nil
}
