package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// statusCodes are the statuses the API answers with; counters for them are
// made up front so the request path does no label lookups.
var statusCodes = []int{200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 410, 412, 413, 431, 500, 503}

type metrics struct {
	reg      *prometheus.Registry
	requests [][]prometheus.Counter // [route+1][status index]; route -1 is "unmatched"
	other    []prometheus.Counter   // statuses outside statusCodes, per route
	// unparsed counts the requests fasthttp refused before any route saw
	// them (route "unparsed"), by status index, and other statuses last.
	unparsed  []prometheus.Counter
	latency   []prometheus.Observer
	handler   fasthttp.RequestHandler
	statusIdx [600]int8

	storeCommit      prometheus.Observer
	syncLag          prometheus.Observer
	webhookBacklog   prometheus.Gauge
	webhookFailures  prometheus.Counter
	webhookDelivered prometheus.Counter
	syncParked       prometheus.Gauge
	connsRefused     prometheus.Counter
	touchesRejected  *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessionedge_http_requests_total",
		Help: "HTTP requests by route and status."}, []string{"route", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sessionedge_http_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 12)}, []string{"route"})
	storeLat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessionedge_store_commit_duration_seconds",
		Help: "Latency of durable store commits.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)})
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessionedge_sync_delivery_lag_seconds",
		Help: "Time from a write to its delivery in a sync answer.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)})
	m.webhookBacklog = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sessionedge_webhook_backlog", Help: "Webhook events waiting in the outbox."})
	m.webhookFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "sessionedge_webhook_failures_total", Help: "Failed webhook delivery attempts."})
	m.webhookDelivered = prometheus.NewCounter(prometheus.CounterOpts{Name: "sessionedge_webhook_delivered_total", Help: "Delivered webhook events."})
	live := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessionedge_sessions_live", Help: "Sessions that are not tombstones."},
		func() float64 { return float64(s.st.Stats().LiveSessions) })
	m.syncParked = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sessionedge_sync_parked",
		Help: "Sync long-polls waiting for a commit."})
	m.connsRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "sessionedge_http_connections_refused_total",
		Help: "Connections refused because their client address held http.maxConnsPerIP already."})
	m.touchesRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessionedge_touches_rejected_total",
		Help: "Touch reports ignored, by reason."}, []string{"reason"})
	for _, r := range []string{touchStaleGeneration, touchKindMismatch, touchEnded, touchInvalid, "not_anonymous", "not_generation_1", "hard_deadline"} {
		m.touchesRejected.WithLabelValues(r)
	}
	m.reg.MustRegister(reqs, lat, storeLat, lag, m.webhookBacklog, m.webhookFailures, m.webhookDelivered, live,
		m.syncParked, m.touchesRejected, m.connsRefused)
	st := s.st
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sessionedge_store_cache_hits_total",
			Help: "Session reads answered by the store's read cache."},
			func() float64 { return float64(st.CacheStats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sessionedge_store_cache_misses_total",
			Help: "Session reads the store's read cache could not answer (absent, or older than asked for)."},
			func() float64 { return float64(st.CacheStats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessionedge_store_cache_hit_ratio",
			Help: "Hits over all reads of the store's read cache since it opened (0 before any read)."},
			func() float64 { return st.CacheStats().HitRatio() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessionedge_store_cache_bytes",
			Help: "What the read cache's entries count against its budget."},
			func() float64 { return float64(st.CacheStats().Bytes) }),
	)
	m.storeCommit, m.syncLag = storeLat, lag
	for i := range m.statusIdx {
		m.statusIdx[i] = -1
	}
	for i, c := range statusCodes {
		m.statusIdx[c] = int8(i)
	}
	names := []string{"unmatched"}
	for _, r := range s.routes {
		names = append(names, r.name)
	}
	for _, n := range names {
		row := make([]prometheus.Counter, len(statusCodes))
		for i, c := range statusCodes {
			row[i] = reqs.WithLabelValues(n, strconv.Itoa(c))
		}
		m.requests = append(m.requests, row)
		m.other = append(m.other, reqs.WithLabelValues(n, "other"))
		m.latency = append(m.latency, lat.WithLabelValues(n))
	}
	for _, c := range statusCodes {
		m.unparsed = append(m.unparsed, reqs.WithLabelValues("unparsed", strconv.Itoa(c)))
	}
	m.unparsed = append(m.unparsed, reqs.WithLabelValues("unparsed", "other"))
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return m
}

// observe records one request; route is -1 when no route matched.
func (m *metrics) observe(route, status int, d time.Duration) {
	r := route + 1
	if status > 0 && status < len(m.statusIdx) && m.statusIdx[status] >= 0 {
		m.requests[r][m.statusIdx[status]].Inc()
	} else {
		m.other[r].Inc()
	}
	m.latency[r].Observe(d.Seconds())
}

// refused records a request fasthttp answered itself (malformed, body or
// head too large, head not in time), with status.
func (m *metrics) refused(status int) {
	if status > 0 && status < len(m.statusIdx) && m.statusIdx[status] >= 0 {
		m.unparsed[m.statusIdx[status]].Inc()
	} else {
		m.unparsed[len(m.unparsed)-1].Inc()
	}
}

// touchRejected counts an ignored touch report.
func (m *metrics) touchRejected(reason string) { m.touchesRejected.WithLabelValues(reason).Inc() }
