package event_test

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/pipeline/event"
)

// FuzzDecode: Decode never panics; every error carries the index it was
// given; an accepted event has a proper id, and its topic encoding decodes
// (as the stream decodes it) to the same event.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		obj(""),
		obj(`"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55","user_id":"u","source":"s",`),
		obj(`"type":"payment.captured","properties":{"amount":"12.50","currency":"EUR"},`),
		obj(`"type":"audit.login","properties":{"actor":"a","action":"b","outcome":"c"},`),
		obj(`"properties":{"a":"\ud83d\ude00 <&> \\u0000","b":[1.5e300,{"c":null}]},`),
		obj(`"properties":{"a":"\ud83d"},`),
		`{"type":"Bad","occurred_at":"nope","user_id":1,"extra":true}`,
		`[]`, `null`, ``, `{`, "\xff", `{"type":"a","type":"b","occurred_at":"2026-11-24T14:05:09Z"}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, assign bool) {
		ev, errs := event.Decode(raw, event.Options{Index: 5, Now: now, AssignID: assign})
		if errs != nil {
			for _, e := range errs {
				if e.Index != 5 || e.Message == "" {
					t.Fatalf("bad error %+v", e)
				}
			}
			if len(errs) > 40 {
				t.Fatalf("%d errors for one event", len(errs))
			}
			return
		}
		if u, err := uuid.Parse(ev.EventID); err != nil || u == uuid.Nil || ev.ReceivedAt.IsZero() {
			t.Fatalf("accepted event without a proper id or received_at: %+v", ev)
		}
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, errs := event.Decode(b, event.Options{Now: now})
		if errs != nil {
			t.Fatalf("topic encoding %s does not decode: %v", b, errs)
		}
		if back.EventID != ev.EventID || back.Type != ev.Type || !back.OccurredAt.Equal(ev.OccurredAt) ||
			!back.ReceivedAt.Equal(ev.ReceivedAt) || back.Source != ev.Source || back.UserID != ev.UserID ||
			!bytes.Equal(back.Properties, ev.Properties) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, back)
		}
		if ev.IsPayment() {
			if _, err := event.ParseMicros(ev.Amount()); err != nil {
				t.Fatalf("accepted payment amount %q does not parse: %v", ev.Amount(), err)
			}
		}
		if _, err := ev.ToRow(0, 0); err != nil {
			t.Fatalf("accepted event has no silver row: %v", err)
		}
	})
}
