package sdk

import (
	"fmt"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Patch is a merge patch of a session's context: the fields and attributes it
// sets, the ones it deletes, and the namespaces it clears. Keys a patch does
// not name keep their values, so concurrent patches of different keys never
// lose each other. Build one with chained calls:
//
//	p := new(sdk.Patch).
//		SetField(wire.FieldCurrency, wire.Text("USD")).
//		Set(wire.NamespaceCustom, "theme", wire.Text("dark"))
//
// A Patch is not safe for concurrent use while it is being built.
type Patch struct {
	fields [wire.NumFields]patchEntry
	attrs  [wire.NumNamespaces][]attrEntry
	clear  [wire.NumNamespaces]bool
}

type patchEntry struct {
	set, del bool
	v        wire.Value
}

type attrEntry struct {
	key string
	patchEntry
}

// SetField sets a well-known field.
func (p *Patch) SetField(f wire.Field, v wire.Value) *Patch {
	p.fields[f] = patchEntry{set: true, v: v}
	return p
}

// DeleteField unsets a well-known field.
func (p *Patch) DeleteField(f wire.Field) *Patch {
	p.fields[f] = patchEntry{del: true}
	return p
}

// Set sets attribute key of namespace ns.
func (p *Patch) Set(ns wire.Namespace, key string, v wire.Value) *Patch {
	p.attrs[ns] = append(p.attrs[ns], attrEntry{key, patchEntry{set: true, v: v}})
	return p
}

// Delete deletes attribute key of namespace ns.
func (p *Patch) Delete(ns wire.Namespace, key string) *Patch {
	p.attrs[ns] = append(p.attrs[ns], attrEntry{key, patchEntry{del: true}})
	return p
}

// Clear deletes every attribute of namespace ns. Attributes the same patch
// sets in ns are not possible alongside a clear; the clear wins.
func (p *Patch) Clear(ns wire.Namespace) *Patch {
	p.clear[ns] = true
	p.attrs[ns] = nil
	return p
}

// appendJSON appends the patch as a JSON merge patch: null deletes, a
// namespace set to null is cleared.
func (p *Patch) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '{')
	n := 0
	sep := func() {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
	}
	var err error
	for f, e := range p.fields {
		if !e.set && !e.del {
			continue
		}
		sep()
		dst = append(appendJSONString(dst, wire.Field(f).String()), ':')
		if e.del {
			dst = append(dst, "null"...)
		} else if dst, err = appendValueJSON(dst, e.v); err != nil {
			return dst, fmt.Errorf("%s: %w", wire.Field(f), err)
		}
	}
	for ns := range p.attrs {
		name := wire.Namespace(ns).String()
		if p.clear[ns] {
			sep()
			dst = append(appendJSONString(dst, name), ":null"...)
			continue
		}
		if len(p.attrs[ns]) == 0 {
			continue
		}
		sep()
		dst = append(appendJSONString(dst, name), ":{"...)
		// A later entry for the same key wins, as it would applied in order.
		last := map[string]int{}
		for i, a := range p.attrs[ns] {
			last[a.key] = i
		}
		m := 0
		for i, a := range p.attrs[ns] {
			if last[a.key] != i {
				continue
			}
			if m > 0 {
				dst = append(dst, ',')
			}
			m++
			dst = append(appendJSONString(dst, a.key), ':')
			if a.del {
				dst = append(dst, "null"...)
			} else if dst, err = appendValueJSON(dst, a.v); err != nil {
				return dst, fmt.Errorf("%s.%s: %w", name, a.key, err)
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}
