package wire

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// maxParamBytes bounds one filter value: the longest an event field may be
// (resource_id, 2 KiB), so a longer value could match nothing.
const maxParamBytes = 2048

// filterParams are the query parameters every read endpoint accepts.
var filterParams = []string{
	"actor_id", "actor_type", "source", "action", "resource_type", "resource_id",
	"result", "org", "project", "status_code", "producer_id", "trace_id", "session_id",
	"not_source", "not_action", "since", "until", "q",
}

// ParseFilter reads the filter parameters every read endpoint accepts from
// v: each repeatable (OR within a parameter, AND across them), since and
// until as RFC 3339 times or durations back from now ("15m", "1h", "7d"),
// and q. It ignores parameters that are not filters; callers reject those
// with CheckParams.
func ParseFilter(v url.Values, now time.Time) (agenttrail.Filter, error) {
	f := agenttrail.Filter{
		ActorID: v["actor_id"], ActorType: v["actor_type"], Source: v["source"],
		Action: v["action"], ResourceType: v["resource_type"], ResourceID: v["resource_id"],
		Result: v["result"], Org: v["org"], Project: v["project"], ProducerID: v["producer_id"],
		SessionID: v["session_id"], NotSource: v["not_source"], NotAction: v["not_action"],
	}
	for _, s := range v["trace_id"] {
		// Stored ids are lowercase (Event.Normalize); one pasted from a
		// tool that prints upper case must find them all the same.
		id := strings.ToLower(s)
		if !isHex(id, agenttrail.TraceIDLen) {
			return agenttrail.Filter{}, agenttrail.Invalid("trace_id", "must be %d hex digits, not %q", agenttrail.TraceIDLen, s)
		}
		f.TraceID = append(f.TraceID, id)
	}
	for _, s := range f.ActorType {
		if s != string(agenttrail.ActorUser) && s != string(agenttrail.ActorAgent) && s != string(agenttrail.ActorSystem) {
			return agenttrail.Filter{}, agenttrail.Invalid("actor_type", "must be user, agent or system, not %q", s)
		}
	}
	for _, s := range f.Result {
		if !agenttrail.Result(s).Valid() {
			return agenttrail.Filter{}, agenttrail.Invalid("result", "must be success, failure, denied or error, not %q", s)
		}
	}
	for _, s := range v["status_code"] {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 599 {
			return agenttrail.Filter{}, agenttrail.Invalid("status_code", "must be an HTTP status from 100 to 599, not %q", s)
		}
		f.StatusCode = append(f.StatusCode, n)
	}
	var err error
	if f.Since, err = parseTimeParam(v, "since", now); err != nil {
		return agenttrail.Filter{}, err
	}
	if f.Until, err = parseTimeParam(v, "until", now); err != nil {
		return agenttrail.Filter{}, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return agenttrail.Filter{}, agenttrail.Invalid("since", "must be before until")
	}
	if len(v["q"]) > 1 {
		return agenttrail.Filter{}, agenttrail.Invalid("q", "may be given once")
	}
	f.Q = v.Get("q")
	for _, name := range filterParams {
		for _, s := range v[name] {
			if s == "" {
				return agenttrail.Filter{}, agenttrail.Invalid(name, "must not be empty")
			}
			if len(s) > maxParamBytes {
				return agenttrail.Filter{}, agenttrail.Invalid(name, "must be at most %d bytes", maxParamBytes)
			}
		}
	}
	if err := f.Check(); err != nil {
		return agenttrail.Filter{}, err
	}
	return f, nil
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func parseTimeParam(v url.Values, name string, now time.Time) (time.Time, error) {
	vals := v[name]
	if len(vals) == 0 {
		return time.Time{}, nil
	}
	if len(vals) > 1 {
		return time.Time{}, agenttrail.Invalid(name, "may be given once")
	}
	t, err := ParseTime(vals[0], now)
	if err != nil {
		return time.Time{}, agenttrail.Invalid(name, "%v", err)
	}
	return t, nil
}

// ParseTime parses an RFC 3339 time, or a duration back from now: Go
// durations ("90s", "15m", "1h30m") plus days ("7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return time.Time{}, agenttrail.Errorf(agenttrail.EINVALID, "must be an RFC 3339 time or a duration such as 15m, 1h or 7d, not %q", s)
	}
	return now.Add(-d).UTC(), nil
}

// ParseDuration parses a positive Go duration or a whole number of days
// ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 100000 {
			return 0, agenttrail.Errorf(agenttrail.EINVALID, "bad duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, agenttrail.Errorf(agenttrail.EINVALID, "bad duration %q", s)
	}
	return d, nil
}

// CheckParams returns an EINVALID error naming the first parameter of v that
// is neither a filter nor one of extra. A typo must not widen an audit query.
func CheckParams(v url.Values, extra ...string) error {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "" {
			// "?=x" or "?&=": an error must still name something the
			// caller can find in the request.
			return agenttrail.Invalid("query", "has a parameter with an empty name")
		}
		if !contains(filterParams, k) && !contains(extra, k) {
			return agenttrail.Invalid(k, "unknown query parameter")
		}
	}
	return nil
}

func contains(set []string, s string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}

// ParseQuery reads the parameters of GET /v1/events: the filters, limit, sort
// and cursor. A cursor must have been minted for the same filters and sort.
func ParseQuery(v url.Values, now time.Time) (agenttrail.Query, error) {
	if err := CheckParams(v, "limit", "sort", "cursor"); err != nil {
		return agenttrail.Query{}, err
	}
	f, err := ParseFilter(v, now)
	if err != nil {
		return agenttrail.Query{}, err
	}
	q := agenttrail.Query{Filter: f, Sort: agenttrail.SortTimeDesc, Limit: agenttrail.DefaultLimit}
	if s := v.Get("limit"); s != "" || v.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > agenttrail.MaxLimit || len(v["limit"]) > 1 {
			return agenttrail.Query{}, agenttrail.Invalid("limit", "must be an integer from 1 to %d, not %q", agenttrail.MaxLimit, s)
		}
		q.Limit = n
	}
	if v.Has("sort") {
		switch s := agenttrail.Sort(v.Get("sort")); s {
		case agenttrail.SortTimeDesc, agenttrail.SortTimeAsc, agenttrail.SortSeq:
			q.Sort = s
		default:
			return agenttrail.Query{}, agenttrail.Invalid("sort", "must be -time, time or seq, not %q", s)
		}
		if len(v["sort"]) > 1 {
			return agenttrail.Query{}, agenttrail.Invalid("sort", "may be given once")
		}
	}
	if v.Has("cursor") {
		if len(v["cursor"]) > 1 {
			return agenttrail.Query{}, agenttrail.Invalid("cursor", "may be given once")
		}
		c, err := DecodeCursor(v.Get("cursor"))
		if err != nil {
			return agenttrail.Query{}, err
		}
		if c.Sort != q.Sort || c.Key != FilterKey(v) {
			return agenttrail.Query{}, agenttrail.Invalid("cursor", "was issued for other filters or another sort; start again without it")
		}
		q.After = &c.Position
	}
	return q, nil
}

// ParseAggregate reads the parameters of GET /v1/aggregate: the filters and by.
func ParseAggregate(v url.Values, now time.Time) (agenttrail.Filter, agenttrail.Dimension, error) {
	if err := CheckParams(v, "by"); err != nil {
		return agenttrail.Filter{}, "", err
	}
	by, err := parseDimension(v, true)
	if err != nil {
		return agenttrail.Filter{}, "", err
	}
	f, err := ParseFilter(v, now)
	return f, by, err
}

// ParseTimeseries reads the parameters of GET /v1/timeseries: the filters,
// interval and an optional by. A series needs a bounded range: since defaults
// to 24 hours, 30 days or 12 weeks before until (per interval), until to now.
func ParseTimeseries(v url.Values, now time.Time) (agenttrail.Filter, agenttrail.Interval, agenttrail.Dimension, error) {
	if err := CheckParams(v, "interval", "by"); err != nil {
		return agenttrail.Filter{}, "", "", err
	}
	if len(v["interval"]) > 1 {
		return agenttrail.Filter{}, "", "", agenttrail.Invalid("interval", "may be given once")
	}
	iv := agenttrail.Interval(v.Get("interval"))
	switch iv {
	case agenttrail.Hour, agenttrail.Day, agenttrail.Week:
	case "":
		return agenttrail.Filter{}, "", "", agenttrail.Invalid("interval", "is required: hour, day or week")
	default:
		return agenttrail.Filter{}, "", "", agenttrail.Invalid("interval", "must be hour, day or week, not %q", iv)
	}
	by, err := parseDimension(v, false)
	if err != nil {
		return agenttrail.Filter{}, "", "", err
	}
	f, err := ParseFilter(v, now)
	if err != nil {
		return agenttrail.Filter{}, "", "", err
	}
	if f.Until.IsZero() {
		f.Until = now.UTC()
	}
	if f.Since.IsZero() {
		switch iv {
		case agenttrail.Hour:
			f.Since = f.Until.Add(-24 * time.Hour)
		case agenttrail.Day:
			f.Since = f.Until.AddDate(0, 0, -30)
		case agenttrail.Week:
			f.Since = f.Until.AddDate(0, 0, -7*12)
		}
	}
	// ParseFilter checks the order only when both were given; a since in
	// the future with until defaulted to now is an empty range too.
	if !f.Since.Before(f.Until) {
		return agenttrail.Filter{}, "", "", agenttrail.Invalid("since", "must be before until")
	}
	n := 0
	for t := iv.Truncate(f.Since); t.Before(f.Until); t = iv.Next(t) {
		if n++; n > agenttrail.MaxBuckets {
			return agenttrail.Filter{}, "", "", agenttrail.Invalid("since", "the range holds more than %d %s buckets; narrow it or use a wider interval", agenttrail.MaxBuckets, iv)
		}
	}
	return f, iv, by, nil
}

func parseDimension(v url.Values, required bool) (agenttrail.Dimension, error) {
	if len(v["by"]) > 1 {
		return "", agenttrail.Invalid("by", "may be given once")
	}
	by := agenttrail.Dimension(v.Get("by"))
	if by == "" {
		if required || v.Has("by") {
			return "", agenttrail.Invalid("by", "is required: one of source, actor_type, actor_id, result, action, resource_type, org, project, model")
		}
		return "", nil
	}
	if !by.Valid() {
		return "", agenttrail.InvalidDimension(by)
	}
	return by, nil
}

// EncodeFilter encodes f as the query parameters ParseFilter reads. Times
// are absolute RFC 3339.
func EncodeFilter(f agenttrail.Filter) url.Values {
	v := url.Values{}
	add := func(name string, vals []string) {
		for _, s := range vals {
			v.Add(name, s)
		}
	}
	add("actor_id", f.ActorID)
	add("actor_type", f.ActorType)
	add("source", f.Source)
	add("action", f.Action)
	add("resource_type", f.ResourceType)
	add("resource_id", f.ResourceID)
	add("result", f.Result)
	add("org", f.Org)
	add("project", f.Project)
	add("producer_id", f.ProducerID)
	add("trace_id", f.TraceID)
	add("session_id", f.SessionID)
	add("not_source", f.NotSource)
	add("not_action", f.NotAction)
	for _, n := range f.StatusCode {
		v.Add("status_code", strconv.Itoa(n))
	}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Q != "" {
		v.Set("q", f.Q)
	}
	return v
}

// ParseRawQuery parses a raw query string (the part of a URL after "?") as
// url.ParseQuery does, but strictly: where url.ParseQuery drops a pair it
// cannot parse and goes on, which turns "?actor_id=nobody;" into no filter
// at all, ParseRawQuery returns an EINVALID error naming the parameter. A
// pair is refused when it holds a ';' (not a separator since Go 1.17, and
// ambiguous between servers and proxies) or is not valid percent-encoding.
// Every endpoint reads its query through it: a typo must never widen an
// audit query.
func ParseRawQuery(raw string) (url.Values, error) {
	v := url.Values{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue // "a=1&&b=2": nothing was dropped
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		name, _, _ := strings.Cut(key, ";")
		if kerr != nil || name == "" {
			name = "query" // the error must still name something the caller sent
		}
		if strings.Contains(pair, ";") {
			return nil, agenttrail.Invalid(name, "holds a ';' in %q: separate parameters with '&' and write a literal ';' as %%3B", pair)
		}
		if kerr != nil {
			return nil, agenttrail.Invalid(name, "has a parameter name that is not valid percent-encoding: %q", rawKey)
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, agenttrail.Invalid(name, "is not valid percent-encoding: %q", rawVal)
		}
		v[key] = append(v[key], val)
	}
	return v, nil
}
