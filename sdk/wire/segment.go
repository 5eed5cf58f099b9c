package wire

// SegmentLen is the length of a segment hash in its text form.
const SegmentLen = 16

// AppendSegment appends the segment of s to dst: 16 lower-case hex
// characters of SHA-256 over "siteCode\x00currency\x00locale\x00targetLocation".
// Sessions with the same segment fields share a segment, so a cache in
// front of the app can vary on it. The edge sends it as x-session-segment
// and the SDK computes the same value from a forwarded context.
func AppendSegment(dst []byte, s *Session) []byte {
	var in [4 * 64]byte
	b := in[:0]
	b = append(b, s.Fields[FieldSiteCode].Text...)
	b = append(b, 0)
	b = append(b, s.Fields[FieldCurrency].Text...)
	b = append(b, 0)
	b = append(b, s.Fields[FieldLocale].Text...)
	b = append(b, 0)
	b = append(b, s.Fields[FieldTargetLocation].Text...)
	sum := sum256(b)
	// By hand: encoding/hex would link fmt into the guest.
	const digits = "0123456789abcdef"
	for _, c := range sum[:SegmentLen/2] {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}
