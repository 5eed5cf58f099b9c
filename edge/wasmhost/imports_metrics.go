package wasmhost

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// histogramBounds are the upper bounds of histogram buckets, in the guest's
// unit (often microseconds or bytes): a 1-2-5 series up to 10^9.
var histogramBounds = func() []int64 {
	var b []int64
	for p := int64(1); p <= 1e9; p *= 10 {
		b = append(b, p, 2*p, 5*p)
	}
	return b
}()

type metric struct {
	name  string
	typ   proxywasm.MetricType
	value atomic.Int64
	// Histograms only.
	buckets []atomic.Uint64
	sum     atomic.Int64
	count   atomic.Uint64
}

// metricRegistry holds the metrics of every VM of a Host by name: all VMs
// defining "x" share one metric, as Envoy's stats do. The list is
// copy-on-write so increments never take a lock.
type metricRegistry struct {
	mu     sync.Mutex
	byName map[string]uint32
	list   atomic.Pointer[[]*metric]
}

func (r *metricRegistry) define(typ proxywasm.MetricType, name string) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strconv.Itoa(int(typ)) + name
	if id, ok := r.byName[key]; ok {
		return id
	}
	if r.byName == nil {
		r.byName = make(map[string]uint32)
	}
	var old []*metric
	if p := r.list.Load(); p != nil {
		old = *p
	}
	m := &metric{name: name, typ: typ}
	if typ == proxywasm.MetricHistogram {
		m.buckets = make([]atomic.Uint64, len(histogramBounds)+1)
	}
	next := append(append([]*metric(nil), old...), m)
	r.list.Store(&next)
	id := uint32(len(next)) // ids start at 1
	r.byName[key] = id
	return id
}

func (r *metricRegistry) get(id uint32) *metric {
	p := r.list.Load()
	if p == nil || id == 0 || int(id) > len(*p) {
		return nil
	}
	return (*p)[id-1]
}

// Metric returns the value of a counter or gauge defined by the guest.
func (h *Host) Metric(name string) (int64, bool) {
	p := h.metrics.list.Load()
	if p == nil {
		return 0, false
	}
	for _, m := range *p {
		if m.name == name && m.typ != proxywasm.MetricHistogram {
			return m.value.Load(), true
		}
	}
	return 0, false
}

// WriteMetrics writes every guest metric in the Prometheus text format, with
// names prefixed "wasm_" and other characters than [A-Za-z0-9_:] turned into
// '_'.
func (h *Host) WriteMetrics(w io.Writer) error {
	p := h.metrics.list.Load()
	if p == nil {
		return nil
	}
	ms := append([]*metric(nil), *p...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
	bw := bufio.NewWriter(w)
	for _, m := range ms {
		name := promName(m.name)
		switch m.typ {
		case proxywasm.MetricCounter:
			fmt.Fprintf(bw, "# TYPE %s counter\n%s %d\n", name, name, m.value.Load())
		case proxywasm.MetricGauge:
			fmt.Fprintf(bw, "# TYPE %s gauge\n%s %d\n", name, name, m.value.Load())
		case proxywasm.MetricHistogram:
			fmt.Fprintf(bw, "# TYPE %s histogram\n", name)
			var cum uint64
			for i, b := range histogramBounds {
				cum += m.buckets[i].Load()
				fmt.Fprintf(bw, "%s_bucket{le=\"%d\"} %d\n", name, b, cum)
			}
			cum += m.buckets[len(histogramBounds)].Load()
			fmt.Fprintf(bw, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %d\n%s_count %d\n", name, cum, name, m.sum.Load(), name, m.count.Load())
		}
	}
	return bw.Flush()
}

func promName(s string) string {
	b := []byte("wasm_")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// proxy_define_metric(metric_type, name_ptr, name_size, return_metric_id):
// the same type and name give the same id.
func proxyDefineMetric(v *vm, stack []uint64) proxywasm.Status {
	typ := proxywasm.MetricType(u32(stack[0]))
	name, ok := v.read(u32(stack[1]), u32(stack[2]))
	if !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if _, ok := v.read(u32(stack[3]), 4); !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if typ > proxywasm.MetricHistogram || len(name) == 0 {
		return proxywasm.StatusBadArgument
	}
	id := v.host.metrics.define(typ, string(name))
	v.writeU32(u32(stack[3]), id)
	return proxywasm.StatusOK
}

// proxy_increment_metric(metric_id, offset i64): counters take offsets >= 0,
// gauges any offset, histograms none (BAD_ARGUMENT).
func proxyIncrementMetric(v *vm, stack []uint64) proxywasm.Status {
	return v.updateMetric(stack, true)
}

// proxy_record_metric(metric_id, value i64): adds to a counter (Envoy's
// behaviour), sets a gauge, records into a histogram.
func proxyRecordMetric(v *vm, stack []uint64) proxywasm.Status {
	return v.updateMetric(stack, false)
}

// updateMetric applies the i64 second argument to the metric the first
// names: an increment adds it to a counter or gauge, a record adds it to a
// counter, sets a gauge or records it into a histogram. A counter takes no
// negative value, a histogram no increment.
func (v *vm) updateMetric(stack []uint64, increment bool) proxywasm.Status {
	m := v.host.metrics.get(u32(stack[0]))
	if m == nil {
		return proxywasm.StatusNotFound
	}
	val := int64(stack[1])
	switch {
	case m.typ == proxywasm.MetricCounter && val < 0, m.typ == proxywasm.MetricHistogram && increment:
		return proxywasm.StatusBadArgument
	case m.typ == proxywasm.MetricCounter, increment:
		m.value.Add(val)
	case m.typ == proxywasm.MetricGauge:
		m.value.Store(val)
	default: // a histogram
		i := sort.Search(len(histogramBounds), func(i int) bool { return histogramBounds[i] >= val })
		m.buckets[i].Add(1)
		m.sum.Add(val)
		m.count.Add(1)
	}
	return proxywasm.StatusOK
}

// proxy_get_metric(metric_id, return_value_ptr): counters and gauges; a
// histogram has no single value (BAD_ARGUMENT).
func proxyGetMetric(v *vm, stack []uint64) proxywasm.Status {
	m := v.host.metrics.get(u32(stack[0]))
	if m == nil {
		return proxywasm.StatusNotFound
	}
	if m.typ == proxywasm.MetricHistogram {
		return proxywasm.StatusBadArgument
	}
	if !v.writeU64(u32(stack[1]), uint64(m.value.Load())) {
		return proxywasm.StatusInvalidMemoryAccess
	}
	return proxywasm.StatusOK
}
