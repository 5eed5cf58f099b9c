package redis

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/sessionedge/sessionedge/origin/store"
)

// streamID is a Redis stream entry id, ms-seq.
type streamID struct{ ms, seq uint64 }

func (a streamID) less(b streamID) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

func parseStreamID(s string) (streamID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, errors.New("redis: bad stream id " + s)
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, errors.New("redis: bad stream id " + s)
	}
	return streamID{a, b}, nil
}

// A cursor names a position in every shard's stream: "r" followed by the
// base64url of, per shard, two uvarints (ms, seq). A cursor for another shard
// count is not ours (the edge gets a reset).
const cursorPrefix = "r"

func encodeCursor(pos []streamID) store.Cursor {
	buf := make([]byte, 0, len(pos)*8)
	for _, p := range pos {
		buf = binary.AppendUvarint(buf, p.ms)
		buf = binary.AppendUvarint(buf, p.seq)
	}
	return store.Cursor(cursorPrefix + base64.RawURLEncoding.EncodeToString(buf))
}

var errForeignCursor = errors.New("redis: cursor is not one of this store's")

// maxCursorLen is the longest cursor text of a store of shards shards: two
// uvarints of at most 10 bytes per shard, in base64url.
func maxCursorLen(shards int) int {
	return len(cursorPrefix) + base64.RawURLEncoding.EncodedLen(shards*2*binary.MaxVarintLen64)
}

// decodeCursor returns the positions of a cursor for shards shards; the
// empty cursor is the beginning of every stream. Cursors come from outside
// (an edge's query string): only the exact text encodeCursor makes for
// shards shards is one of this store's, and the work is linear in the
// cursor's length, which is checked first.
func decodeCursor(c store.Cursor, shards int) ([]streamID, error) {
	pos := make([]streamID, shards)
	if c == "" {
		return pos, nil
	}
	if len(c) > maxCursorLen(shards) {
		return nil, errForeignCursor
	}
	s, ok := strings.CutPrefix(string(c), cursorPrefix)
	if !ok {
		return nil, errForeignCursor
	}
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errForeignCursor
	}
	for i := range pos {
		var n int
		if pos[i].ms, n = binary.Uvarint(buf); n <= 0 {
			return nil, errForeignCursor
		}
		buf = buf[n:]
		if pos[i].seq, n = binary.Uvarint(buf); n <= 0 {
			return nil, errForeignCursor
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		return nil, errForeignCursor
	}
	// Overlong uvarints and stray base64 bits decode too; refuse all but
	// the canonical text, so one position has one cursor.
	if encodeCursor(pos) != c {
		return nil, errForeignCursor
	}
	return pos, nil
}
