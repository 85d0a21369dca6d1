package ingest_test

import (
	"strings"
	"testing"
)

// TestRefusesWhatTheWarehouseCannotStore: the values that used to get 202
// and then stop the stream (issue 13) are refused with 400, each error
// naming the event's index and the field's path. The request is
// all-or-nothing: the valid event beside the bad one is not accepted, and
// nothing reaches the topic.
func TestRefusesWhatTheWarehouseCannotStore(t *testing.T) {
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, nil)
	good := ev("page_view", `"properties":{"x":1.5e300,"deep":`+strings.Repeat("[", 63)+strings.Repeat("]", 63)+`}`)

	cases := []struct {
		name, bad, field, msg string
	}{
		{"huge number", ev("a", `"properties":{"x":1e999999}`), "properties.x",
			"number 1e999999 is out of the range PostgreSQL can store: 1000000 digits before the decimal point, the limit is 309"},
		{"tiny number", ev("a", `"properties":{"x":-1e-999999}`), "properties.x",
			"number -1e-999999 is out of the range PostgreSQL can store: 999999 digits after the decimal point, the limit is 340"},
		{"number past the float64 range", ev("a", `"properties":{"a":[{"b":[0,1e309]}]}`), "properties.a[0].b[1]", "310 digits before the decimal point, the limit is 309"},
		{"3000 deep", ev("a", `"properties":{"x":`+strings.Repeat("[", 3000)+strings.Repeat("]", 3000)+`}`), "properties.x" + strings.Repeat("[0]", 63),
			"deeper than the limit of 64 levels"},
		{"NUL in a value", ev("a", `"properties":{"a":[1,2,3,{"b":"x\u0000"}]}`), "properties.a[3].b", "NUL character"},
		{"NUL in a key", ev("a", `"properties":{"a\u0000b":1}`), `properties["a\u0000b"]`, "the key must not contain the NUL character"},
		{"lone surrogate", ev("a", `"properties":{"x":"\ud800"}`), "properties.x", "unpaired UTF-16 surrogate escape (\\ud800)"},
		{"NUL in source", ev("a", `"source":"web\u0000"`), "source", "NUL character"},
		{"surrogate in user_id", ev("a", `"user_id":"\udc00"`), "user_id", "unpaired UTF-16 surrogate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, ndjson := range []bool{false, true} {
				body := jsonArray(good, tc.bad)
				var headers map[string]string
				if ndjson {
					body = []byte(good + "\n" + tc.bad + "\n")
					headers = map[string]string{"Content-Type": "application/x-ndjson"}
				}
				r := post(t, base, body, headers)
				if r.status != 400 || r.Accepted != 0 || len(r.EventIDs) != 0 || !strings.Contains(r.Error, "1 of 2 events are invalid; nothing was accepted") {
					t.Fatalf("ndjson %v: status %d: %.500s", ndjson, r.status, r.raw)
				}
				if len(r.Errors) != 1 || r.Errors[0].Index != 1 || r.Errors[0].Field != tc.field || !strings.Contains(r.Errors[0].Message, tc.msg) {
					t.Errorf("ndjson %v: errors %+v,\nwant one at index 1, field %q, message ~%q", ndjson, r.Errors, tc.field, tc.msg)
				}
			}
		})
	}

	// The three events of the incident in one request: three errors, one
	// per index.
	r := post(t, base, jsonArray(cases[0].bad, cases[1].bad, cases[3].bad), nil)
	if r.status != 400 || len(r.Errors) != 3 {
		t.Fatalf("status %d: %.500s", r.status, r.raw)
	}
	for i, e := range r.Errors {
		if e.Index != i || !strings.HasPrefix(e.Field, "properties.x") {
			t.Errorf("error %d: %+v", i, e)
		}
	}

	if n := topicSize(t, brokers); n != 0 {
		t.Errorf("refused requests put %d records on the topic", n)
	}
	// The valid event alone is accepted: properties and the 63 arrays of
	// properties.deep are 64 levels, the limit.
	if r := post(t, base, []byte(good), nil); r.status != 202 {
		t.Fatalf("the valid event alone: status %d: %.300s", r.status, r.raw)
	}
}
