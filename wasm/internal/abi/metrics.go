package abi

// MetricType is the type of a metric (proxy_define_metric).
type MetricType uint32

// The metric types.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)
