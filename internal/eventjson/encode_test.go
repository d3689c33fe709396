package eventjson

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/storetest"
)

// TestAppend: the native payload is byte for byte what
// encoding/json writes, for awkward strings, numbers and times too.
func TestAppend(t *testing.T) {
	idx := int64(7)
	events := storetest.Events(42, 200, storetest.Base(), time.Hour)
	odd := []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\x7f\b\f\n\r\t", "bad utf8 \xff\xfe end", "line sep \u2028 para \u2029", "<html> & 'x'", "日本語 ✓ 😀"}
	for i := range events {
		e := &events[i]
		s := odd[i%len(odd)]
		e.Description, e.ActorName, e.ResourceID = s, odd[(i+1)%len(odd)], odd[(i+3)%len(odd)]
		e.DurationMS = []float64{0, 1, 0.5, 1e-7, 123456789.125, 1e21, 3e-10, -2.5}[i%8]
		e.StatusCode, e.ProducerSeq = i%3*200, int64(i%2)
		if i%4 == 0 {
			e.ReceivedAt = time.Time{}
			e.LogIndex = &idx
		}
		if i%5 == 0 {
			e.Metadata = []byte(` { "a" : [1, 2 ,{"b":"<c>"}] , "u":"\u2028"} `)
		}
		e.Time = e.Time.In(time.FixedZone("x", 3600+1800))
	}
	for i := range events {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&events[i]); err != nil {
			t.Fatal(err)
		}
		got, ok := Append(nil, &events[i])
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
	bad := events[1]
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := Append(nil, &bad); ok {
		t.Error("a time past year 9999 was encoded")
	}
}
