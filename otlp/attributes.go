package otlp

import (
	"encoding/base64"
	"math"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// attributes are the attributes of one span or log record and of its
// resource. Lookups read the record's own attributes first: an agent may set
// gen_ai.agent.id on its resource and override it on one span.
type attributes struct {
	own, res map[string]any
}

// attrMap flattens OTLP key-values into plain Go values: string, bool,
// int64, float64, []any, map[string]any (bytes as base64). A repeated key
// keeps its last value.
func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		if kv.GetKey() != "" {
			m[kv.GetKey()] = anyValue(kv.GetValue())
		}
	}
	return m
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64) // JSON has no NaN
		}
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.GetValues())
	}
	return nil
}

// get returns the first of keys that the record or else its resource has.
func (a attributes) get(keys ...string) (any, bool) {
	for _, m := range []map[string]any{a.own, a.res} {
		for _, k := range keys {
			if v, ok := m[k]; ok && v != nil {
				return v, true
			}
		}
	}
	return nil, false
}

// has reports whether the record itself (not its resource) has any of keys.
func (a attributes) has(keys ...string) bool {
	for _, k := range keys {
		if _, ok := a.own[k]; ok {
			return true
		}
	}
	return false
}

// str returns the first of keys present as a string, "" for none. Numbers
// and booleans are formatted: a producer may send a port or an id as
// either.
func (a attributes) str(keys ...string) string {
	v, ok := a.get(keys...)
	if !ok {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// int returns the first of keys present as an integer. A string of digits
// counts: OTLP JSON producers sometimes write integers as strings.
func (a attributes) int(keys ...string) (int64, bool) {
	v, ok := a.get(keys...)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

// strings returns the first of keys present as a list of strings.
func (a attributes) strings(keys ...string) []string {
	v, ok := a.get(keys...)
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
