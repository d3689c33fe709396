package wire_test

import (
	"errors"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// fuzzNow is the fixed clock of the fuzz targets, so that a crasher
// reproduces.
var fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"actor_id=a&actor_id=b&source=shell&since=1h&until=2025-06-01T11:00:00Z&limit=10&sort=seq",
		"actor_type=agent&result=failure&status_code=403&q=Secret&org=acme&project=p&producer_id=x&resource_type=pod&resource_id=r&action=GET",
		"since=7d&interval=day&by=model",
		"interval=week&since=2000-01-01T00:00:00Z",
		"limit=201&sort=-time",
		"cursor=AQOhsgPrPRoAAAAAAAAAAAAFAAAAAAAAAAc",
		"=x&%zz",
		"by=project&by=org",
		"since=15m&since=1h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // the server answers a parse error; what did parse must still be safe
		check := func(name string, err error) {
			t.Helper()
			var e *agenttrail.Error
			if err != nil && (!errors.As(err, &e) || e.Code != agenttrail.EINVALID || e.Field == "") {
				t.Fatalf("%s(%q) error = %#v, want an EINVALID *Error naming a field", name, raw, err)
			}
		}
		q, err := wire.ParseQuery(v, fuzzNow)
		check("ParseQuery", err)
		if err == nil && (q.Limit < 1 || q.Limit > agenttrail.MaxLimit) {
			t.Fatalf("ParseQuery(%q).Limit = %d, want 1 to %d", raw, q.Limit, agenttrail.MaxLimit)
		}
		_, _, err = wire.ParseAggregate(v, fuzzNow)
		check("ParseAggregate", err)
		tf, iv, _, err := wire.ParseTimeseries(v, fuzzNow)
		check("ParseTimeseries", err)
		if err == nil && !tf.Since.Before(tf.Until) {
			t.Fatalf("ParseTimeseries(%q) range [%v, %v), want since before until", raw, tf.Since, tf.Until)
		}
		if err == nil && (iv != agenttrail.Hour && iv != agenttrail.Day && iv != agenttrail.Week) {
			t.Fatalf("ParseTimeseries(%q) interval = %q", raw, iv)
		}
		f1, err := wire.ParseFilter(v, fuzzNow)
		check("ParseFilter", err)
		if err != nil {
			return
		}
		f2, err := wire.ParseFilter(wire.EncodeFilter(f1), fuzzNow.Add(time.Hour))
		if err != nil || !reflect.DeepEqual(f1, f2) {
			t.Fatalf("ParseFilter(Values(%+v)) = %+v, %v, want the same filter", f1, f2, err)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	for _, c := range []wire.Cursor{
		{Sort: agenttrail.SortSeq, Position: agenttrail.Position{Seq: 5}, Key: 7},
		{Sort: agenttrail.SortTimeDesc, Position: agenttrail.Position{Time: fuzzNow, Seq: 1 << 40}, Key: 1<<64 - 1},
		{Sort: agenttrail.SortTimeAsc, Position: agenttrail.Position{Time: time.Unix(0, 1)}},
	} {
		f.Add(c.Encode())
	}
	f.Add("")
	f.Add("AQOhsgPrPRoAAAAAAAAAAAAFAAAAAAAAAAd")
	f.Add("AQOhsgPrPRoAAAAAAAAAAAAFAAAAAAAAAAc=")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := wire.DecodeCursor(s)
		if err != nil {
			if agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) != "cursor" {
				t.Fatalf("DecodeCursor(%q) error = %v, want EINVALID naming cursor", s, err)
			}
			return
		}
		if got := c.Encode(); got != s {
			t.Fatalf("DecodeCursor(%q).Encode() = %q, want the same text", s, got)
		}
		if c.Position.Seq < 0 {
			t.Fatalf("DecodeCursor(%q).Position.Seq = %d, want >= 0", s, c.Position.Seq)
		}
	})
}
