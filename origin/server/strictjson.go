package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// DecodeConfig parses a JSON configuration document into v (a pointer to a
// struct) strictly: keys must match the fields' JSON names exactly, and an
// unknown key or a value of the wrong type fails with the field's path
// ("config: timeouts.customer.idel: unknown field").
func DecodeConfig(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return configError("", "DecodeConfig needs a non-nil pointer")
	}
	if !json.Valid(data) {
		// Let encoding/json describe the syntax error.
		var discard any
		err := json.Unmarshal(data, &discard)
		return configError("", "not JSON: "+trimErr(err))
	}
	if err := checkConfigValue(data, rv.Type().Elem(), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if e, ok := err.(*json.UnmarshalTypeError); ok {
			te = e
			return configError(te.Field, "must be "+te.Type.String())
		}
		return configError("", trimErr(err))
	}
	return nil
}

// checkConfigValue walks raw against type t and reports the first key t
// does not have, or the first value t cannot hold, by its path.
func checkConfigValue(raw []byte, t reflect.Type, path string) error {
	raw = bytes.TrimSpace(raw)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if string(raw) == "null" {
			return nil
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			return configError(path, trimErr(err))
		}
		return nil
	}
	if string(raw) == "null" {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return configError(path, "must be an object")
		}
		fields := map[string]reflect.Type{}
		collectJSONFields(t, fields)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				return configError(joinPath(path, k), "unknown field")
			}
			if err := checkConfigValue(m[k], ft, joinPath(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return configError(path, "must be an object")
		}
		for _, k := range sortedKeys(m) {
			if err := checkConfigValue(m[k], t.Elem(), joinPath(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		var a []json.RawMessage
		if err := json.Unmarshal(raw, &a); err != nil {
			return configError(path, "must be an array")
		}
		for i, e := range a {
			if err := checkConfigValue(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	case reflect.Interface:
		return configError(path, "is not configurable")
	}
	if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
		want := t.Kind().String()
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "an integer in range"
		case reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		}
		return configError(path, "must be "+want)
	}
	return nil
}

// collectJSONFields maps the JSON names of t's exported fields (and those
// of its embedded structs, as encoding/json promotes them) to their types.
func collectJSONFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectJSONFields(ft, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			// Untagged fields (wire.Limits) are written in camelCase, which
			// encoding/json matches case-insensitively.
			name = strings.ToLower(f.Name[:1]) + f.Name[1:]
		}
		out[name] = f.Type
	}
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
