package wire

// sortStableFunc sorts s by cmp, keeping equal elements in their order, as
// slices.SortStableFunc does. It is written here because the slices sorts
// instantiate a dozen functions per element type, which the wasm guest pays
// for in module size: runs of 16 are insertion-sorted in place, then merged
// pairwise through one buffer of len(s).
func sortStableFunc[E any](s []E, cmp func(a, b E) int) {
	const run = 16
	n := len(s)
	for lo := 0; lo < n; lo += run {
		hi := min(lo+run, n)
		for i := lo + 1; i < hi; i++ {
			for j := i; j > lo && cmp(s[j], s[j-1]) < 0; j-- {
				s[j], s[j-1] = s[j-1], s[j]
			}
		}
	}
	if n <= run {
		return
	}
	src, dst := s, make([]E, n)
	for width := run; width < n; width *= 2 {
		for lo := 0; lo < n; lo += 2 * width {
			mid, hi := min(lo+width, n), min(lo+2*width, n)
			i, j, k := lo, mid, lo
			for i < mid && j < hi {
				if cmp(src[j], src[i]) < 0 {
					dst[k] = src[j]
					j++
				} else {
					dst[k] = src[i]
					i++
				}
				k++
			}
			k += copy(dst[k:], src[i:mid])
			copy(dst[k:], src[j:hi])
		}
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}
