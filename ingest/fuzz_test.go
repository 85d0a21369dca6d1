package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/pipeline/event"
)

var fuzzNow = time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)

const fuzzMaxEvent = 600

var parserSeeds = []string{
	`{"type":"page_view","occurred_at":"2026-11-24T14:05:09Z"}`,
	`[{"type":"a","occurred_at":"2026-11-24T14:05:09Z"},{"type":"b","occurred_at":"2026-11-24T14:05:09.123+01:00","user_id":"u-1"}]`,
	` [ {"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"s":"]},[{\"\\","n":[1,{"x":"}"}]}} ] `,
	`[{"type":"payment.captured","occurred_at":"2026-11-24T14:05:09Z","properties":{"amount":"12.50","currency":"EUR"}}]`,
	`{"type":"audit.login","occurred_at":"2026-11-24T14:05:09Z","properties":{"actor":"a","action":"b"}}`,
	`{"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55","type":"a","occurred_at":"2026-11-24T14:05:09Z","source":"web"}`,
	"{\"type\":\"a\",\"occurred_at\":\"2026-11-24T14:05:09Z\"}\n\n{\"type\":\"b\",\"occurred_at\":\"2026-11-24T14:05:09Z\"}\r\n",
	`{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"x":"\ud83d\ude00 <&>"}}`,
	`[]`, `{}`, `[1,"a",null]`, `null`, ``, `   `, `[{"type":"a",}]`, `[{"type":"a"}`, `{"a":1}{"b":2}`,
	`{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"x":"\u0000"}}`,
	`{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"x":"\udc00"}}`,
	`{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"blob":"` + strings.Repeat("x", 700) + `"}}`,
	"[\"\xff\"]", `[{"type":"a","occurred_at":"2026-11-24T14:05:09Z"},]`, `[[[[]]]]`, `"\"`,
	`[{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"x":1e999999}},{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"x":-1e-999999,"\u0000":1}}]`,
	`{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}}`,
}

// FuzzParseEvents checks the body parser: it never panics; it returns events
// or an error, never both; refusals are 400 or 413 with at least one listed
// error; and accepted events are exactly the array's elements (cross-checked
// with encoding/json), each valid, and unchanged by a trip through the topic
// encoding.
func FuzzParseEvents(f *testing.F) {
	for _, s := range parserSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		format := formatJSON
		if ndjson {
			format = formatNDJSON
		}
		events, perr := parseEvents(body, format, fuzzMaxEvent, fuzzNow)
		if (events == nil) == (perr == nil) {
			t.Fatalf("events %v and error %v: want exactly one", events, perr)
		}
		if perr != nil {
			if perr.status != http.StatusBadRequest && perr.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", perr.status)
			}
			if len(perr.errs) == 0 || len(perr.errs) > maxListedErrors || perr.summary == "" || perr.omitted < 0 {
				t.Fatalf("refusal with %d errors, %d omitted, summary %q", len(perr.errs), perr.omitted, perr.summary)
			}
			for _, e := range perr.errs {
				if e.Index < 0 || e.Message == "" {
					t.Fatalf("bad error %+v", e)
				}
				if !ndjson && json.Valid(body) && strings.Contains(e.Message, "malformed JSON") {
					t.Fatalf("valid JSON called malformed: %+v", e)
				}
			}
			return
		}
		if len(events) == 0 {
			t.Fatal("no events and no error")
		}
		if !ndjson {
			trimmed := bytes.TrimSpace(body)
			if trimmed[0] == '[' {
				var elems []json.RawMessage
				if err := json.Unmarshal(body, &elems); err != nil || len(elems) != len(events) {
					t.Fatalf("parsed %d events; encoding/json sees %d elements (%v)", len(events), len(elems), err)
				}
				for i, raw := range elems {
					want, errs := event.Decode(raw, event.Options{Now: fuzzNow, AssignID: true})
					if errs != nil {
						t.Fatalf("element %d was accepted but does not decode alone: %v", i, errs)
					}
					same(t, events[i], want, false)
				}
			} else if len(events) != 1 {
				t.Fatalf("one object parsed into %d events", len(events))
			}
		}
		for _, ev := range events {
			if u, err := uuid.Parse(ev.EventID); err != nil || u == uuid.Nil || !ev.ReceivedAt.Equal(fuzzNow) {
				t.Fatalf("event without a proper id or received_at: %+v", ev)
			}
			value, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, errs := event.Decode(value, event.Options{Now: fuzzNow})
			if errs != nil {
				t.Fatalf("the record value of an accepted event does not decode: %v\n%s", errs, value)
			}
			same(t, back, ev, true)
		}
	})
}

func same(t *testing.T, got, want event.Event, ids bool) {
	t.Helper()
	if got.Type != want.Type || !got.OccurredAt.Equal(want.OccurredAt) || got.Source != want.Source ||
		got.UserID != want.UserID || !bytes.Equal(got.Properties, want.Properties) ||
		(ids && (got.EventID != want.EventID || !got.ReceivedAt.Equal(want.ReceivedAt))) {
		t.Fatalf("events differ:\n got %+v\nwant %+v", got, want)
	}
}

func TestSplitArrayMatchesEncodingJSON(t *testing.T) {
	for _, body := range []string{
		`[]`, `[1]`, ` [ 1 , "a,b]" , {"x":[1,2]} , [ ] , null ] `,
		`["\"", "\\", "\\\"]", {"k\"":"v]"}]`,
		"[\n{\"a\":\"}\"}\n,\n{}\n]",
	} {
		var want []json.RawMessage
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		got, closed := splitArray(bytes.TrimSpace([]byte(body)))
		if !closed || len(got) != len(want) {
			t.Fatalf("%s: split into %d (closed %v), want %d", body, len(got), closed, len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], bytes.TrimSpace(want[i])) {
				t.Errorf("%s: element %d is %q, want %q", body, i, got[i], want[i])
			}
		}
	}
}
