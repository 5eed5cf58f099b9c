package caddy

import (
	"bytes"
	"math"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The metrics go into the Prometheus registry of the Caddy configuration
// the handlers belong to (Caddy serves it on its admin endpoint's /metrics
// and through the metrics handler). One collector per registry reports
// every handler of that configuration, summed by the "plugin" label (the
// plugin name); the filters' own metrics (wasm_<name>) are the ones
// wasmhost.Host.WriteMetrics writes, read back from its text format.
var registries = struct {
	sync.Mutex
	m map[*prometheus.Registry]*collector
}{m: map[*prometheus.Registry]*collector{}}

// collector is a prometheus.Collector of the handlers of one registry. It
// is unchecked (it describes nothing ahead) because the filters define
// their metrics at run time; it is never unregistered, because a
// registry lives as long as its configuration, and so do its handlers.
type collector struct {
	reg      *prometheus.Registry
	mu       sync.Mutex
	handlers map[*Handler]*pooledHost
}

// registerMetrics adds h to the collector of reg, registering the collector
// with the first handler.
func registerMetrics(reg *prometheus.Registry, h *Handler) *collector {
	registries.Lock()
	defer registries.Unlock()
	c := registries.m[reg]
	if c == nil {
		c = &collector{reg: reg, handlers: map[*Handler]*pooledHost{}}
		if err := reg.Register(c); err != nil {
			h.logger.Sugar().Warnf("proxy_wasm: metrics not registered: %v", err)
		}
		registries.m[reg] = c
	}
	c.mu.Lock()
	c.handlers[h] = h.host
	c.mu.Unlock()
	return c
}

// remove takes h out of the collector; the last handler forgets the
// registry.
func (c *collector) remove(h *Handler) {
	registries.Lock()
	defer registries.Unlock()
	c.mu.Lock()
	delete(c.handlers, h)
	empty := len(c.handlers) == 0
	c.mu.Unlock()
	if empty {
		delete(registries.m, c.reg)
	}
}

// Describe implements prometheus.Collector: nothing, an unchecked collector.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

type pluginSums struct {
	requests, inFlight, failures, local, upstreamErrors int64
	restarts, healthyVMs, callsInFlight, paused         int64
	clusterInFlight, clusterRefused                     map[string]int64
	guest                                               map[string]*guestMetric
}

type guestMetric struct {
	typ     dto.MetricType
	value   float64
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

var (
	labelPlugin  = []string{"plugin"}
	labelCluster = []string{"plugin", "cluster"}
)

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc("caddy_proxy_wasm_"+name, help, labels, nil)
}

var (
	descRequests       = desc("requests_total", "Requests the filter handled.", labelPlugin)
	descInFlight       = desc("requests_in_flight", "Requests in the filter or the handlers after it.", labelPlugin)
	descFailures       = desc("filter_failures_total", "Requests whose filter failed (the failure policy applied).", labelPlugin)
	descLocal          = desc("local_replies_total", "Requests the filter answered itself.", labelPlugin)
	descUpstreamErrors = desc("upstream_errors_total", "Requests whose later handlers failed.", labelPlugin)
	descRestarts       = desc("vm_restarts_total", "Failed filter VMs replaced.", labelPlugin)
	descHealthyVMs     = desc("vms_healthy", "Filter VMs that take requests.", labelPlugin)
	descCallsInFlight  = desc("http_calls_in_flight", "HTTP calls of the filter in flight.", labelPlugin)
	descPaused         = desc("streams_paused", "Requests waiting for the filter (an HTTP call of the filter, say).", labelPlugin)
	descClusterFlight  = desc("cluster_calls_in_flight", "HTTP calls of the filter in flight, per cluster.", labelCluster)
	descClusterRefused = desc("cluster_calls_refused_total", "HTTP calls of the filter refused because max_calls_in_flight were in flight.", labelCluster)
)

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	handlers := make(map[*Handler]*pooledHost, len(c.handlers))
	for h, p := range c.handlers {
		handlers[h] = p
	}
	c.mu.Unlock()

	plugins := map[string]*pluginSums{}
	sums := func(name string) *pluginSums {
		s := plugins[name]
		if s == nil {
			s = &pluginSums{clusterInFlight: map[string]int64{}, clusterRefused: map[string]int64{}, guest: map[string]*guestMetric{}}
			plugins[name] = s
		}
		return s
	}
	seen := map[*pooledHost]bool{}
	for h, p := range handlers {
		s := sums(p.name)
		s.requests += h.requests.Load()
		s.inFlight += h.inFlight.Load()
		s.failures += h.filterFailures.Load()
		s.local += h.localReplies.Load()
		s.upstreamErrors += h.upstreamErrors.Load()
		if seen[p] {
			continue // a host shared by several handlers counts once
		}
		seen[p] = true
		s.restarts += p.host.Restarts()
		s.healthyVMs += int64(p.host.HealthyVMs())
		s.callsInFlight += p.host.InflightCalls()
		s.paused += p.host.PausedStreams()
		for _, cl := range p.clusters {
			s.clusterInFlight[cl.Name] += cl.InFlight()
			s.clusterRefused[cl.Name] += cl.Refused()
		}
		addGuestMetrics(s.guest, p)
	}

	names := make([]string, 0, len(plugins))
	for name := range plugins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := plugins[name]
		counter := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		gauge := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), append([]string{name}, labels...)...)
		}
		counter(descRequests, s.requests)
		gauge(descInFlight, s.inFlight)
		counter(descFailures, s.failures)
		counter(descLocal, s.local)
		counter(descUpstreamErrors, s.upstreamErrors)
		counter(descRestarts, s.restarts)
		gauge(descHealthyVMs, s.healthyVMs)
		gauge(descCallsInFlight, s.callsInFlight)
		gauge(descPaused, s.paused)
		for cl, v := range s.clusterInFlight {
			gauge(descClusterFlight, v, cl)
			counter(descClusterRefused, s.clusterRefused[cl], cl)
		}
		for mname, m := range s.guest {
			d := prometheus.NewDesc(mname, "Metric defined by the filter.", labelPlugin, nil)
			switch m.typ {
			case dto.MetricType_COUNTER:
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, m.value, name)
			case dto.MetricType_GAUGE:
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, m.value, name)
			case dto.MetricType_HISTOGRAM:
				ch <- prometheus.MustNewConstHistogram(d, m.count, m.sum, m.buckets, name)
			}
		}
	}
}

// addGuestMetrics adds the filter's metrics of p (wasm_<name>) to dst, by
// name, parsed from the Prometheus text wasmhost writes.
func addGuestMetrics(dst map[string]*guestMetric, p *pooledHost) {
	var buf bytes.Buffer
	if err := p.host.WriteMetrics(&buf); err != nil || buf.Len() == 0 {
		return
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		return
	}
	for name, f := range families {
		if len(f.Metric) == 0 {
			continue
		}
		m := f.Metric[0]
		g := dst[name]
		if g == nil {
			g = &guestMetric{typ: f.GetType(), buckets: map[float64]uint64{}}
			dst[name] = g
		} else if g.typ != f.GetType() {
			continue // another filter of the same plugin name defined it otherwise
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			g.value += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			g.value += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			hm := m.GetHistogram()
			g.count += hm.GetSampleCount()
			g.sum += hm.GetSampleSum()
			for _, b := range hm.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), +1) {
					g.buckets[b.GetUpperBound()] += b.GetCumulativeCount()
				}
			}
		}
	}
}

// Interface guards
var _ prometheus.Collector = (*collector)(nil)
