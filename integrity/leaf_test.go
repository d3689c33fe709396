package integrity_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
)

// notInLeaf lists the Event fields the leaf leaves out, each with why.
var notInLeaf = map[string]string{
	"LogIndex": "the leaf's position, proven by the tree itself",
}

func sample() agenttrail.Event {
	return agenttrail.Event{
		ID: "01J", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), ActorType: agenttrail.ActorAgent,
		ActorID: "a", Source: "shell", Action: "x", Result: agenttrail.ResultSuccess, Org: "acme",
		Seq: 9, ReceivedAt: time.Date(2026, 1, 2, 3, 4, 6, 7, time.UTC), Metadata: json.RawMessage(`{"k":1}`),
	}
}

// TestEncodingCoversEveryField changes each exported field of Event in turn
// and requires the leaf hash to change: a field added to Event that the
// canonical encoding leaves out fails here, so nothing escapes the tree.
func TestEncodingCoversEveryField(t *testing.T) {
	base := sample()
	want, _ := integrity.LeafHash(&base, nil)
	typ := reflect.TypeFor[agenttrail.Event]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		if _, ok := notInLeaf[f.Name]; ok {
			continue
		}
		e := sample()
		v := reflect.ValueOf(&e).Elem().Field(i)
		if !changeValue(v) {
			t.Errorf("Event.%s (%s): the test cannot change it; teach changeValue, and add the field to integrity.AppendEvent", f.Name, f.Type)
			continue
		}
		if got, _ := integrity.LeafHash(&e, nil); got == want {
			t.Errorf("Event.%s is not in the leaf: add it to integrity.AppendEvent (and its documentation) or to notInLeaf with a reason", f.Name)
		}
	}
}

// changeValue sets v to a value other than sample's, and reports whether it
// knows how.
func changeValue(v reflect.Value) bool {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Nanosecond)))
	case v.Type() == reflect.TypeFor[json.RawMessage]():
		v.Set(reflect.ValueOf(json.RawMessage(`{"k":2}`)))
	case v.Kind() == reflect.String:
		v.SetString(v.String() + "x")
	case v.Kind() == reflect.Int, v.Kind() == reflect.Int64, v.Kind() == reflect.Int32:
		v.SetInt(v.Int() + 1)
	case v.Kind() == reflect.Float64:
		v.SetFloat(v.Float() + 0.5)
	case v.Kind() == reflect.Bool:
		v.SetBool(!v.Bool())
	default:
		return false
	}
	return true
}

// TestEncodingStable pins version 1 of the encoding: a change to it must
// come with a new EncodingVersion, never silently.
func TestEncodingStable(t *testing.T) {
	e := sample()
	h, _ := integrity.LeafHash(&e, nil)
	if got, want := h.String(), "Rdn8sFZ9r/q5X6HF67Ax/S2ulWVYQPRTRu/xStuoLBA="; got != want {
		t.Errorf("LeafHash(sample) = %s, want %s", got, want)
	}
}

// TestCanonicalJSON checks that the JSON forms an encoder may produce of
// one metadata value give one leaf.
func TestCanonicalJSON(t *testing.T) {
	want := `{"a":"<b> & \"c\\u003c\"","n":[1,2]}`
	for _, in := range []string{
		want,
		`{ "a" : "<b> & \"c\\u003c\"", "n": [1, 2] }`,
		`{"a":"\u003cb\u003e \u0026 \"c\\u003c\"","n":[1,2]}`,
	} {
		if got := string(integrity.CanonicalJSON(json.RawMessage(in))); got != want {
			t.Errorf("CanonicalJSON(%s) = %s, want %s", in, got, want)
		}
	}
	b, _ := json.Marshal(json.RawMessage(want)) // escapes HTML
	if got := string(integrity.CanonicalJSON(b)); got != want {
		t.Errorf("CanonicalJSON(json.Marshal) = %s, want %s", got, want)
	}
}
