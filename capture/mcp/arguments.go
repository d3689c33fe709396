package mcp

import (
	"bytes"
	"encoding/json"
)

// arguments returns the arguments of a call as recorded: unchanged when they
// fit in ArgumentsBytes; otherwise with every string redacted and then
// shortened, so a secret is never cut into a fragment the Redactor would
// miss. Arguments that still do not fit are left out; truncated reports
// either. Keys are kept, so the Redactor can still mask values by key name.
func (o *observer) arguments(raw json.RawMessage) (json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	limit := o.cfg.ArgumentsBytes
	if len(raw) <= limit {
		return raw, false
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, true
	}
	keep := max(limit/16, 64)
	v = o.shorten(v, keep, 0)
	b, err := json.Marshal(v)
	if err != nil || len(b) > limit {
		return nil, true
	}
	return b, true
}

// shorten redacts and truncates every string in v, keeps the first few
// items of long arrays, and cuts nesting deeper than a few levels.
func (o *observer) shorten(v any, keep, depth int) any {
	const maxItems, maxDepth = 32, 8
	switch t := v.(type) {
	case string:
		return truncate(o.cfg.Redactor.String(t), keep)
	case map[string]any:
		if depth >= maxDepth {
			return "…"
		}
		for k, x := range t {
			t[k] = o.shorten(x, keep, depth+1)
		}
		return t
	case []any:
		if depth >= maxDepth {
			return "…"
		}
		if len(t) > maxItems {
			t = append(t[:maxItems:maxItems], "…")
		}
		for i, x := range t {
			t[i] = o.shorten(x, keep, depth+1)
		}
		return t
	}
	return v
}
