//go:build wasip1

package abi

import "unsafe"

// The metrics functions of ABI v0.2.1. Their values are 64-bit: the only
// i64 parameters of the ABI.

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(typ uint32, name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

var retMetric uint32

// DefineMetric defines (or finds) the metric name of type mt and returns
// its id. Every VM of a host that defines one name shares the metric.
func DefineMetric(mt MetricType, name string) (uint32, Status) {
	retMetric = 0
	st := Status(proxyDefineMetric(uint32(mt), strPtr(name), uint32(len(name)), unsafe.Pointer(&retMetric)))
	return retMetric, st
}

// IncrementMetric adds delta to a counter (delta ≥ 0) or a gauge.
func IncrementMetric(id uint32, delta int64) Status { return Status(proxyIncrementMetric(id, delta)) }

// RecordMetric sets a gauge or records a histogram value.
func RecordMetric(id uint32, value uint64) Status { return Status(proxyRecordMetric(id, value)) }
