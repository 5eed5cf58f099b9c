//go:build !wasip1

package abi

// MetricStore holds the metrics of the VMs of one host, by name: like a
// proxy's stats, every VM that defines a name shares its value. Give
// several Mocks the same store to model one proxy with several workers.
type MetricStore struct {
	ids    map[string]uint32
	Values []int64 // by id - 1
	Names  []string
}

// NewMetricStore returns an empty metric store.
func NewMetricStore() *MetricStore { return &MetricStore{ids: map[string]uint32{}} }

// Get returns the value of metric name (0 when undefined).
func (ms *MetricStore) Get(name string) int64 {
	if id := ms.ids[name]; id != 0 {
		return ms.Values[id-1]
	}
	return 0
}

// DefineMetric defines (or finds) metric name and returns its id.
func DefineMetric(mt MetricType, name string) (uint32, Status) {
	ms := host.Metrics
	if ms == nil {
		return 0, StatusUnimplemented
	}
	if id := ms.ids[name]; id != 0 {
		return id, StatusOK
	}
	ms.Values = append(ms.Values, 0)
	ms.Names = append(ms.Names, name)
	id := uint32(len(ms.Values))
	ms.ids[name] = id
	return id, StatusOK
}

// IncrementMetric adds delta to metric id.
func IncrementMetric(id uint32, delta int64) Status {
	ms := host.Metrics
	if ms == nil || id == 0 || int(id) > len(ms.Values) {
		return StatusNotFound
	}
	ms.Values[id-1] += delta
	return StatusOK
}

// RecordMetric sets metric id to value.
func RecordMetric(id uint32, value uint64) Status {
	ms := host.Metrics
	if ms == nil || id == 0 || int(id) > len(ms.Values) {
		return StatusNotFound
	}
	ms.Values[id-1] = int64(value)
	return StatusOK
}
