// Package wire holds the formats shared by the edge filter, the origin and the
// SDK: session ids and tokens, the session context model, deltas, and their
// deterministic CBOR encoding.
//
// The package imports only the standard library and uses no reflection, so the
// guest filter (built for wasip1, kept TinyGo-compatible) can import it. Hot
// paths append into caller-owned buffers and do not allocate.
//
// docs/wire.md describes every format byte by byte, with CDDL.
package wire
