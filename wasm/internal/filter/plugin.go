package filter

import (
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// Plugin is one root context: a configuration, its caches, and the HTTP
// calls it has in flight.
type Plugin struct {
	id  uint32
	cfg *config.Config

	tokens   tokenCache
	sessions sessionCache

	calls    map[uint32]*call  // in-flight HTTP calls by token
	inflight map[wire.ID]*call // in-flight fetches and logouts by session, so requests share them
	fetches  int               // session fetches in flight
	sync     syncState
	touches  touchBuffer
	breaker  breaker
	stale    bool   // the feed is older than cache.maxStale
	scratch  []byte // encoding scratch, reused
	callBuf  []byte // HTTP call headers, reused
	pathBuf  []byte
	counters Counters

	metrics      metrics
	metricsTried bool

	captureWrites map[wire.ID]bool        // sessions with a capture write in flight
	mintedPrefix  string                  // shared-data keys of captured values of minted sessions (capture.go)
	capBody       []byte                  // the body of the next capture write
	devices       map[string]*wire.Device // shared device records (Plugin.device)
	devKey        []byte

	// The site of the last request's host, so that most requests skip the
	// map lookup.
	lastHost []byte
	lastSite *config.Site
}

// Counters count what the filter did, for tests and logs.
type Counters struct {
	Requests, Verified, CacheHits, Minted, Reissued, IdleActions, Rejected                 uint64
	Fetches, Degraded, FailClosed, SyncPolls, SyncApplied, SyncDropped, Resets, TouchPosts uint64
	Logouts, HintFetches, StaleFetches, BreakerOpened, BreakerRefused, Unminted            uint64
	TouchesDropped, CrossSite, Captured, CapturesRefused, CaptureWrites                    uint64
}

// Counters returns a copy of the plugin's counters.
func (p *Plugin) Counters() Counters { return p.counters }

// Config returns the active configuration, or nil before configure.
func (p *Plugin) Config() *config.Config { return p.cfg }

func newPlugin(id uint32) *Plugin {
	return &Plugin{id: id, calls: map[uint32]*call{}, inflight: map[wire.ID]*call{}, captureWrites: map[wire.ID]bool{},
		devices: map[string]*wire.Device{}}
}

// maxConfigSize bounds the plugin configuration we are willing to read.
const maxConfigSize = 1 << 20

func (p *Plugin) configure(size uint32) bool {
	if size > maxConfigSize {
		abi.Log(abi.LogError, "sessionedge: plugin configuration larger than 1 MiB")
		return false
	}
	var b []byte
	if size > 0 {
		var st abi.Status
		b, st = abi.GetBufferBytes(abi.BufferPluginConfiguration, 0, size)
		if st != abi.StatusOK {
			abi.Log(abi.LogError, "sessionedge: cannot read the plugin configuration")
			return false
		}
	}
	cfg, err := config.Parse(b)
	if err != nil {
		abi.Log(abi.LogError, "sessionedge: invalid plugin configuration: "+err.Error())
		return false
	}
	p.defineMetrics()
	// A reconfigure keeps nothing: cached sessions might have been built
	// with other limits, tokens verified with another keyring. Calls in
	// flight still deliver their answers to the streams that wait.
	if p.breaker.open {
		p.metricAdd(p.metrics.breakerOpen, -1)
	}
	if p.stale {
		p.metricAdd(p.metrics.feedStale, -1)
	}
	p.breaker, p.stale = breaker{}, false
	p.cfg = cfg
	p.tokens = newTokenCache(cfg.TokenEntries)
	p.sessions = newSessionCache(cfg.CacheEntries, cfg.CacheBytes)
	p.lastHost, p.lastSite = p.lastHost[:0], nil
	p.sync.init(cfg, abi.NowNanos()/1e6)
	p.mintedPrefix = "sessionedge/minted/" + cfg.Origin.Cluster + "/"
	p.touches.reset(cfg.TouchBuffer)
	clear(p.devices) // they name the sites of the old configuration
	tick := uint32(cfg.SyncInterval.Milliseconds() / 4)
	if tick < 25 {
		tick = 25
	}
	abi.SetTickPeriod(tick)
	abi.Log(abi.LogInfo, "sessionedge: configured (origin cluster "+cfg.Origin.Cluster+")")
	return true
}

// forget detaches a stream that is being deleted from the calls it waits
// for, so their replies are ignored.
func (p *Plugin) forget(s *stream) {
	if s.waiting != nil {
		s.waiting.detach(s)
		s.waiting = nil
	}
}

func logf(level abi.LogLevel, msg string) { abi.Log(level, "sessionedge: "+msg) }

// site returns the site defaults of host.
func (p *Plugin) site(host []byte) *config.Site {
	if p.lastSite != nil && equalBytes(host, p.lastHost) {
		return p.lastSite
	}
	p.lastSite = p.cfg.Site(host)
	p.lastHost = append(p.lastHost[:0], host...)
	return p.lastSite
}
