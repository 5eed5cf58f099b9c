package wasmhost

import "sort"

// NamedCluster is an HTTPCluster and the name the filter calls it by.
type NamedCluster struct {
	Name string
	*HTTPCluster
}

// NewHTTPClusters returns an HTTPCluster for each name → address of addrs,
// each with maxInFlight calls in flight at most (0: the default): as
// Clusters for Config, and as a list sorted by name, for metrics.
func NewHTTPClusters(addrs map[string]string, maxInFlight int) (Clusters, []NamedCluster) {
	clusters := Clusters{}
	named := make([]NamedCluster, 0, len(addrs))
	for name, addr := range addrs {
		c := &HTTPCluster{Addr: addr, MaxInFlight: maxInFlight}
		clusters[name] = c
		named = append(named, NamedCluster{name, c})
	}
	sort.Slice(named, func(i, j int) bool { return named[i].Name < named[j].Name })
	return clusters, named
}
