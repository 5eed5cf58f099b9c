package filter

import (
	"strconv"

	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// breaker is the circuit breaker of one VM's calls to the origin. After
// origin.breaker.failures consecutive failed calls (no answer within the
// timeout, a reset, a 5xx or a 429) it opens: calls on the request path
// (fetches, logouts, self-service writes) are not made, so an uncached
// token gets failMode at once instead of waiting for the timeout. After
// origin.breaker.coolDown one call goes through as a probe: a request-path
// call, or from the tick a touch report (or, with none waiting and no poll
// of the VM's own in flight, a request for the feed's head), so a VM that
// serves only cached sessions recovers too; its success closes the
// breaker, its failure opens it for another cool-down. Any call that gets
// an answer (the sync poll included) closes it. Touch reports wait while it
// is open.
type breaker struct {
	failures int   // consecutive failed calls
	open     bool  // open or half-open
	until    int64 // Unix ms: open until, then half-open
	probing  bool  // the probe call of the half-open state is in flight
}

// allow reports whether a request-path call may be made at nowMs; in the
// half-open state the one call it allows is the probe.
func (p *Plugin) breakerAllow(nowMs int64) (ok, probe bool) {
	b := &p.breaker
	if !b.open {
		return true, false
	}
	if nowMs < b.until || b.probing {
		return false, false
	}
	b.probing = true
	return true, true
}

// breakerRecord counts the outcome of a call.
func (p *Plugin) breakerRecord(ok, probe bool, nowMs int64) {
	b := &p.breaker
	if probe {
		b.probing = false
	}
	if ok {
		b.failures = 0
		if b.open {
			b.open = false
			p.metricAdd(p.metrics.breakerOpen, -1)
			logf(abi.LogInfo, "origin answers again: circuit breaker closed")
		}
		return
	}
	b.failures++
	switch {
	case b.open && probe:
		b.until = nowMs + p.cfg.Origin.BreakerCoolDown.Milliseconds()
	case !b.open && b.failures >= p.cfg.Origin.BreakerFailures:
		b.open, b.until = true, nowMs+p.cfg.Origin.BreakerCoolDown.Milliseconds()
		p.counters.BreakerOpened++
		p.metricAdd(p.metrics.breakerOpen, 1)
		p.metricAdd(p.metrics.breakerOpened, 1)
		logf(abi.LogWarn, "origin failing ("+strconv.Itoa(b.failures)+" calls in a row): circuit breaker open for "+
			p.cfg.Origin.BreakerCoolDown.String()+"; uncached sessions get failMode")
	}
}

// callOK reports whether an origin answer counts as the origin working.
func callOK(status int) bool { return status != 0 && status < 500 && status != 429 }

// metrics are the ids of the guest's proxy-wasm metrics (0: the host has
// none). Gauges count over every VM of the proxy: each VM adds its part.
type metrics struct {
	breakerOpen     uint32 // gauge: VMs whose breaker is open
	breakerOpened   uint32 // counter: times a breaker opened
	feedStale       uint32 // gauge: VMs whose feed is older than cache.maxStale
	fetchesInFlight uint32 // gauge: session fetches waiting for the origin
	touchesDropped  uint32 // counter: activity reports dropped at the touch buffer's cap
	degraded        uint32 // counter: requests forwarded degraded or refused for want of a context
	feedResyncs     uint32 // counter: times a VM dropped its cache to continue from the shared feed's head
}

// The metric names; docs/filter.md lists them.
const (
	metricBreakerOpen     = "sessionedge_breaker_open"
	metricBreakerOpened   = "sessionedge_breaker_opened_total"
	metricFeedStale       = "sessionedge_feed_stale"
	metricFetchesInFlight = "sessionedge_fetches_in_flight"
	metricTouchesDropped  = "sessionedge_touches_dropped_total"
	metricDegraded        = "sessionedge_degraded_total"
	metricFeedResyncs     = "sessionedge_feed_resyncs_total"
)

func defineMetric(mt abi.MetricType, name string) uint32 {
	id, st := abi.DefineMetric(mt, name)
	if st != abi.StatusOK {
		return 0
	}
	return id
}

func (p *Plugin) defineMetrics() {
	if p.metrics.breakerOpen != 0 || p.metricsTried {
		return
	}
	p.metricsTried = true
	p.metrics = metrics{
		breakerOpen:     defineMetric(abi.MetricGauge, metricBreakerOpen),
		breakerOpened:   defineMetric(abi.MetricCounter, metricBreakerOpened),
		feedStale:       defineMetric(abi.MetricGauge, metricFeedStale),
		fetchesInFlight: defineMetric(abi.MetricGauge, metricFetchesInFlight),
		touchesDropped:  defineMetric(abi.MetricCounter, metricTouchesDropped),
		degraded:        defineMetric(abi.MetricCounter, metricDegraded),
		feedResyncs:     defineMetric(abi.MetricCounter, metricFeedResyncs),
	}
}

func (p *Plugin) metricAdd(id uint32, delta int64) {
	if id != 0 && delta != 0 {
		abi.IncrementMetric(id, delta)
	}
}
