package wire

// attrChanges collects the attribute ops of one delta and applies them to
// the session in one merge per namespace, so a delta of n ops costs
// O(n log n) rather than a copy of the namespace per op: a delta at the op
// limit would otherwise spend most of a second inside a wasm guest.
type attrChanges struct {
	first    attrChange   // the only change of most deltas, kept without a slice
	list     []attrChange // every change, once there are two
	n        int
	cleared  [NumNamespaces]int // seq of the last clear of each namespace, -1 for none
	anyClear bool
	seq      int
}

// attrChange sets key of ns to v; the zero Value deletes it.
type attrChange struct {
	ns  Namespace
	key string
	v   Value
	seq int
}

func (cs *attrChanges) init() {
	for i := range cs.cleared {
		cs.cleared[i] = -1
	}
}

func (cs *attrChanges) add(ns Namespace, key string, v Value) {
	c := attrChange{ns: ns, key: key, v: v, seq: cs.seq}
	cs.seq++
	switch cs.n {
	case 0:
		cs.first = c
	case 1:
		cs.list = append(make([]attrChange, 0, 8), cs.first, c)
	default:
		cs.list = append(cs.list, c)
	}
	cs.n++
}

// clear empties ns: it drops the stored attributes and every change made
// before it.
func (cs *attrChanges) clear(ns Namespace) {
	cs.cleared[ns] = cs.seq
	cs.anyClear = true
	cs.seq++
}

// apply writes the changes into s.Attrs.
func (cs *attrChanges) apply(s *Session) {
	if cs.n == 1 && !cs.anyClear {
		c := &cs.first
		if c.v.IsZero() {
			s.Attrs[c.ns] = s.Attrs[c.ns].Without(c.key)
		} else {
			s.Attrs[c.ns] = s.Attrs[c.ns].With(c.key, c.v)
		}
		return
	}
	if cs.n == 1 {
		cs.list = []attrChange{cs.first}
	}
	if len(cs.list) > 1 {
		// Stable, so the changes of one key stay in op order and the last
		// one wins below.
		sortStableFunc(cs.list, func(a, b attrChange) int {
			switch {
			case a.ns != b.ns:
				return int(a.ns) - int(b.ns)
			case keyLess(a.key, b.key):
				return -1
			case keyLess(b.key, a.key):
				return 1
			}
			return 0
		})
	}
	rest := cs.list
	for ns := Namespace(0); ns < NumNamespaces; ns++ {
		n := 0
		for n < len(rest) && rest[n].ns == ns {
			n++
		}
		changes := rest[:n]
		rest = rest[n:]
		base := s.Attrs[ns]
		if cs.cleared[ns] >= 0 {
			base = nil
		} else if n == 0 {
			continue
		}
		s.Attrs[ns] = merge(base, changes, cs.cleared[ns])
	}
}

// merge returns base with the changes (sorted by key, op order within a
// key) made after the clear at seq cleared applied.
func merge(base Attrs, changes []attrChange, cleared int) Attrs {
	out := make(Attrs, 0, len(base)+len(changes))
	i := 0
	for j := 0; j < len(changes); j++ {
		c := &changes[j]
		if c.seq < cleared || (j+1 < len(changes) && changes[j+1].key == c.key) {
			continue // cleared, or a later change of the same key wins
		}
		for i < len(base) && keyLess(base[i].Key, c.key) {
			out = append(out, base[i])
			i++
		}
		if i < len(base) && base[i].Key == c.key {
			i++
		}
		if !c.v.IsZero() {
			out = append(out, Attr{Key: c.key, Value: c.v})
		}
	}
	out = append(out, base[i:]...)
	if len(out) == 0 {
		return nil
	}
	return out
}
