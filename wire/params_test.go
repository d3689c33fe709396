package wire_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// testNow is the fixed clock of the tests: relative times count back from
// it.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func query(t *testing.T, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("url.ParseQuery(%q) error = %v", raw, err)
	}
	return v
}

// wantField checks that err is an EINVALID error naming field.
func wantField(t *testing.T, call string, err error, field string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s error = nil, want field %q", call, field)
		return
	}
	if code, got := agenttrail.ErrorCode(err), agenttrail.ErrorField(err); code != agenttrail.EINVALID || got != field {
		t.Errorf("%s error = %v (code %q), want field %q", call, err, code, field)
	}
}

func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want agenttrail.Filter
	}{
		{"", agenttrail.Filter{}},
		{"actor_id=a&actor_type=agent&source=shell&action=ls&resource_type=pod&resource_id=r%201&result=failure" +
			"&org=acme&project=p&status_code=403&producer_id=pr&q=Deploy+Prod",
			agenttrail.Filter{ActorID: []string{"a"}, ActorType: []string{"agent"}, Source: []string{"shell"},
				Action: []string{"ls"}, ResourceType: []string{"pod"}, ResourceID: []string{"r 1"},
				Result: []string{"failure"}, Org: []string{"acme"}, Project: []string{"p"},
				StatusCode: []int{403}, ProducerID: []string{"pr"}, Q: "Deploy Prod"}},
		{"actor_id=a&actor_id=b&status_code=200&status_code=404&actor_type=user&actor_type=system&result=success&result=error&result=denied",
			agenttrail.Filter{ActorID: []string{"a", "b"}, StatusCode: []int{200, 404},
				ActorType: []string{"user", "system"}, Result: []string{"success", "error", "denied"}}},
		{"since=15m", agenttrail.Filter{Since: testNow.Add(-15 * time.Minute)}},
		{"since=1h&until=90s", agenttrail.Filter{Since: testNow.Add(-time.Hour), Until: testNow.Add(-90 * time.Second)}},
		{"since=7d", agenttrail.Filter{Since: testNow.AddDate(0, 0, -7)}},
		{"since=2025-05-01T10:00:00%2B02:00&until=2025-05-02T00:00:00.5Z", agenttrail.Filter{
			Since: time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC), Until: time.Date(2025, 5, 2, 0, 0, 0, 5e8, time.UTC)}},
		{"limit=5&sort=seq&cursor=x&by=y&interval=z", agenttrail.Filter{}}, // not filters: the callers check them
		{"trace_id=4BF92F3577B34DA6A3CE929D0E0E4736&trace_id=00000000000000000000000000000001&session_id=task+7&session_id=T%C3%A2che",
			agenttrail.Filter{TraceID: []string{"4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000000000000000000001"},
				SessionID: []string{"task 7", "Tâche"}}},
	} {
		got, err := wire.ParseFilter(query(t, c.raw), testNow)
		if err != nil {
			t.Errorf("ParseFilter(%q) error = %v", c.raw, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseFilter(%q) =\n%+v, want\n%+v", c.raw, got, c.want)
		}
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, c := range []struct{ raw, field string }{
		{"actor_type=robot", "actor_type"},
		{"actor_type=agent&actor_type=", "actor_type"},
		{"result=ok", "result"},
		{"status_code=abc", "status_code"},
		{"status_code=99", "status_code"},
		{"status_code=600", "status_code"},
		{"since=yesterday", "since"},
		{"since=-1h", "since"},
		{"since=0d", "since"},
		{"since=", "since"},
		{"until=x", "until"},
		{"since=1h&until=2h", "since"},
		{"since=2025-06-01T10:00:00Z&until=2025-06-01T10:00:00Z", "since"},
		{"since=1h&since=2h", "since"},
		{"until=1h&until=2h", "until"},
		{"q=a&q=b", "q"},
		{"actor_id=", "actor_id"},
		{"source=shell&source=", "source"},
		{"resource_id=" + strings.Repeat("r", 2049), "resource_id"},
		{"trace_id=4bf92f3577b34da6a3ce929d0e0e473", "trace_id"},
		{"trace_id=4bf92f3577b34da6a3ce929d0e0e4736&trace_id=4bf92f35-77b3-4da6-a3ce-929d0e0e4736", "trace_id"},
		{"trace_id=", "trace_id"},
		{"session_id=", "session_id"},
		{"session_id=" + strings.Repeat("s", 2049), "session_id"},
	} {
		_, err := wire.ParseFilter(query(t, c.raw), testNow)
		wantField(t, "ParseFilter("+c.raw+")", err, c.field)
	}
}

func TestParseTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"15m", testNow.Add(-15 * time.Minute)},
		{"1h30m", testNow.Add(-90 * time.Minute)},
		{"7d", testNow.Add(-7 * 24 * time.Hour)},
		{"2024-02-29T23:59:59.123456789Z", time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC)},
		{"2024-03-01T01:00:00+01:00", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := wire.ParseTime(c.in, testNow)
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v, want %v in UTC", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "0", "0s", "-5m", "1.5d", "d", "7 d", "100001d", "2024-02-30T00:00:00Z", "2024-01-01"} {
		if _, err := wire.ParseTime(in, testNow); agenttrail.ErrorCode(err) != agenttrail.EINVALID {
			t.Errorf("ParseTime(%q) error = %v, want EINVALID", in, err)
		}
	}
}

func TestCheckParams(t *testing.T) {
	for _, c := range []struct {
		raw   string
		extra []string
		field string
	}{
		{"actor_id=a&since=1h&q=x", nil, ""},
		{"actor_id=a&limit=5", []string{"limit"}, ""},
		{"actor_id=a&limit=5", nil, "limit"},
		{"actr_id=a&zz=1", nil, "actr_id"}, // the first in name order
		{"=x", nil, "query"},
	} {
		err := wire.CheckParams(query(t, c.raw), c.extra...)
		if c.field == "" {
			if err != nil {
				t.Errorf("CheckParams(%q, %q) error = %v, want nil", c.raw, c.extra, err)
			}
			continue
		}
		wantField(t, "CheckParams("+c.raw+")", err, c.field)
	}
}

func TestParseQuery(t *testing.T) {
	for _, c := range []struct {
		raw   string
		limit int
		sort  agenttrail.Sort
	}{
		{"", agenttrail.DefaultLimit, agenttrail.SortTimeDesc},
		{"limit=1", 1, agenttrail.SortTimeDesc},
		{"limit=200&sort=time", 200, agenttrail.SortTimeAsc},
		{"sort=seq&actor_id=a", agenttrail.DefaultLimit, agenttrail.SortSeq},
		{"sort=-time", agenttrail.DefaultLimit, agenttrail.SortTimeDesc},
	} {
		q, err := wire.ParseQuery(query(t, c.raw), testNow)
		if err != nil {
			t.Errorf("ParseQuery(%q) error = %v", c.raw, err)
			continue
		}
		if q.Limit != c.limit || q.Sort != c.sort || q.After != nil {
			t.Errorf("ParseQuery(%q) = limit %d, sort %q, after %v, want limit %d, sort %q, no after",
				c.raw, q.Limit, q.Sort, q.After, c.limit, c.sort)
		}
	}
	q, err := wire.ParseQuery(query(t, "actor_id=a&since=1h"), testNow)
	if err != nil || !reflect.DeepEqual(q.Filter.ActorID, []string{"a"}) || !q.Filter.Since.Equal(testNow.Add(-time.Hour)) {
		t.Errorf("ParseQuery(actor_id=a&since=1h) = %+v, %v, want its filter", q.Filter, err)
	}
}

func TestParseQueryErrors(t *testing.T) {
	for _, c := range []struct{ raw, field string }{
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"limit=x", "limit"},
		{"limit=", "limit"},
		{"limit=-1", "limit"},
		{"limit=5&limit=6", "limit"},
		{"sort=asc", "sort"},
		{"sort=", "sort"},
		{"sort=seq&sort=time", "sort"},
		{"actor=x", "actor"},
		{"limt=5", "limt"},
		{"interval=hour", "interval"},
		{"=x", "query"},
		{"result=ok", "result"},
		{"cursor=", "cursor"},
	} {
		_, err := wire.ParseQuery(query(t, c.raw), testNow)
		wantField(t, "ParseQuery("+c.raw+")", err, c.field)
	}
}

func TestParseAggregate(t *testing.T) {
	f, by, err := wire.ParseAggregate(query(t, "by=model&source=llm-proxy"), testNow)
	if err != nil || by != agenttrail.DimModel || !reflect.DeepEqual(f.Source, []string{"llm-proxy"}) {
		t.Errorf("ParseAggregate(by=model&source=llm-proxy) = %+v, %q, %v", f, by, err)
	}
	for _, d := range agenttrail.Dimensions {
		if _, by, err := wire.ParseAggregate(url.Values{"by": {string(d)}}, testNow); err != nil || by != d {
			t.Errorf("ParseAggregate(by=%s) = %q, %v, want %q", d, by, err, d)
		}
	}
	for _, c := range []struct{ raw, field string }{
		{"", "by"},
		{"by=", "by"},
		{"by=time", "by"},
		{"by=source&by=org", "by"},
		{"by=source&interval=hour", "interval"},
		{"by=source&limit=5", "limit"},
		{"by=source&result=ok", "result"},
	} {
		_, _, err := wire.ParseAggregate(query(t, c.raw), testNow)
		wantField(t, "ParseAggregate("+c.raw+")", err, c.field)
	}
}

func TestParseTimeseries(t *testing.T) {
	until := time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		raw          string
		iv           agenttrail.Interval
		by           agenttrail.Dimension
		since, until time.Time
	}{
		{"interval=hour", agenttrail.Hour, "", testNow.Add(-24 * time.Hour), testNow},
		{"interval=day&by=source", agenttrail.Day, agenttrail.DimSource, testNow.AddDate(0, 0, -30), testNow},
		{"interval=week", agenttrail.Week, "", testNow.AddDate(0, 0, -84), testNow},
		{"interval=day&until=2025-05-20T00:00:00Z", agenttrail.Day, "", until.AddDate(0, 0, -30), until},
		{"interval=hour&since=2h", agenttrail.Hour, "", testNow.Add(-2 * time.Hour), testNow},
		{"interval=day&since=2020-01-01T00:00:00Z", agenttrail.Day, "", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), testNow},
	} {
		f, iv, by, err := wire.ParseTimeseries(query(t, c.raw), testNow)
		if err != nil {
			t.Errorf("ParseTimeseries(%q) error = %v", c.raw, err)
			continue
		}
		if iv != c.iv || by != c.by || !f.Since.Equal(c.since) || !f.Until.Equal(c.until) {
			t.Errorf("ParseTimeseries(%q) = %q by %q [%v, %v), want %q by %q [%v, %v)",
				c.raw, iv, by, f.Since, f.Until, c.iv, c.by, c.since, c.until)
		}
	}
}

func TestParseTimeseriesErrors(t *testing.T) {
	// testNow is on the hour: MaxBuckets hours back from it is the widest
	// hourly range, and a minute more starts one bucket earlier.
	widest := testNow.Add(-agenttrail.MaxBuckets * time.Hour).Format(time.RFC3339)
	tooWide := testNow.Add(-agenttrail.MaxBuckets*time.Hour - time.Minute).Format(time.RFC3339)
	if _, _, _, err := wire.ParseTimeseries(query(t, "interval=hour&since="+widest), testNow); err != nil {
		t.Errorf("ParseTimeseries(%d hours) error = %v, want nil", agenttrail.MaxBuckets, err)
	}
	for _, c := range []struct{ raw, field string }{
		{"", "interval"},
		{"interval=minute", "interval"},
		{"interval=hour&interval=day", "interval"},
		{"interval=hour&by=nope", "by"},
		{"interval=hour&by=", "by"},
		{"interval=hour&since=" + tooWide, "since"},
		{"interval=hour&since=2020-01-01T00:00:00Z", "since"},
		{"interval=hour&since=2025-06-02T00:00:00Z", "since"}, // after the defaulted until
		{"interval=day&since=1h&until=2h", "since"},
		{"interval=day&limit=5", "limit"},
		{"interval=day&status_code=0", "status_code"},
	} {
		_, _, _, err := wire.ParseTimeseries(query(t, strings.ReplaceAll(c.raw, "+", "%2B")), testNow)
		wantField(t, "ParseTimeseries("+c.raw+")", err, c.field)
	}
}

func TestFilterValuesRoundTrip(t *testing.T) {
	for _, f := range []agenttrail.Filter{
		{},
		{ActorID: []string{"a", "b"}, ActorType: []string{"agent"}, Source: []string{"shell", "mcp-tool"},
			Action: []string{"GET /x?y=1&z"}, ResourceType: []string{"pod"}, ResourceID: []string{"a b"},
			Result: []string{"error"}, Org: []string{"acme"}, Project: []string{"p1", "p2"}, StatusCode: []int{200, 503},
			ProducerID: []string{"pr"}, Since: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
			Until: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), Q: "100% sure & done"},
	} {
		v := wire.EncodeFilter(f)
		got, err := wire.ParseFilter(query(t, v.Encode()), testNow)
		if err != nil || !reflect.DeepEqual(got, f) {
			t.Errorf("ParseFilter(%q) = %+v, %v, want %+v", v.Encode(), got, err, f)
		}
	}
	rel, err := wire.ParseFilter(query(t, "since=1h"), testNow)
	if err != nil {
		t.Fatalf("ParseFilter(since=1h) error = %v", err)
	}
	if got, want := wire.EncodeFilter(rel).Get("since"), "2025-06-01T11:00:00Z"; got != want {
		t.Errorf("Values() of since=1h: since = %q, want the absolute %q", got, want)
	}
}

func TestParseRawQuery(t *testing.T) {
	for _, raw := range []string{"", "actor_id=a&actor_id=b&q=x+y%3Bz", "a=1&&b=", "since=2025-05-01T10:00:00%2B02:00", "=x"} {
		got, err := wire.ParseRawQuery(raw)
		if err != nil {
			t.Errorf("ParseRawQuery(%q) error = %v", raw, err)
			continue
		}
		if want := query(t, raw); !reflect.DeepEqual(got, want) && len(want)+len(got) > 0 {
			t.Errorf("ParseRawQuery(%q) = %v, want %v (url.ParseQuery's)", raw, got, want)
		}
	}
	for _, c := range []struct{ raw, field string }{
		{"actor_id=nobody;", "actor_id"},
		{"source=shell&actor_id=nobody;org=acme", "actor_id"},
		{"actor_id;org=acme", "actor_id"},
		{";", "query"},
		{"actor_id=%zz", "actor_id"},
		{"actor_id=50%", "actor_id"},
		{"%zz=1", "query"},
		{"q=%", "q"},
	} {
		_, err := wire.ParseRawQuery(c.raw)
		wantField(t, "ParseRawQuery("+c.raw+")", err, c.field)
	}
}
