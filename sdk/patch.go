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
	o := jsonObject{b: append(dst, '{')}
	var err error
	for f, e := range p.fields {
		if !e.set && !e.del {
			continue
		}
		o.key(wire.Field(f).String())
		if e.del {
			o.b = append(o.b, "null"...)
		} else if o.b, err = appendValueJSON(o.b, e.v); err != nil {
			return o.b, fmt.Errorf("%s: %w", wire.Field(f), err)
		}
	}
	for ns := range p.attrs {
		name := wire.Namespace(ns).String()
		if p.clear[ns] {
			o.key(name)
			o.b = append(o.b, "null"...)
			continue
		}
		if len(p.attrs[ns]) == 0 {
			continue
		}
		o.key(name)
		// A later entry for the same key wins, as it would applied in order.
		last := map[string]int{}
		for i, a := range p.attrs[ns] {
			last[a.key] = i
		}
		inner := jsonObject{b: append(o.b, '{')}
		for i, a := range p.attrs[ns] {
			if last[a.key] != i {
				continue
			}
			inner.key(a.key)
			if a.del {
				inner.b = append(inner.b, "null"...)
			} else if inner.b, err = appendValueJSON(inner.b, a.v); err != nil {
				return inner.b, fmt.Errorf("%s.%s: %w", name, a.key, err)
			}
		}
		o.b = append(inner.b, '}')
	}
	return append(o.b, '}'), nil
}
