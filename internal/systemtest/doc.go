// Package systemtest holds the system tests of sessionedge: each starts the
// real binaries (the origin, the edge proxy with the filter) and the apps
// behind them on free loopback ports, through internal/testbin, and checks
// a promise of docs/ end to end: revocation under a flood of cookie-less
// requests, a hung origin, session headers forged in every spelling, the
// revocation of a customer's every session, one configuration vocabulary,
// and a missing tool that fails where it is required.
//
// The package has no code outside its tests. `go test
// ./internal/systemtest` runs a short version of each (about a minute);
// scripts/bench-consistency.sh runs the long measurements that
// docs/benchmarks.md records, through the environment variables of
// flood_test.go.
package systemtest
