//go:build !wasip1

package wire

import "time"

// Std returns d as a time.Duration; "none" and unset are 0. (Not in the wasm
// guest, which links no time package.)
func (d Duration) Std() time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(d)
}
