package event_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/pipeline/event"
)

var now = time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)

const okTime = `"occurred_at":"2026-11-24T14:05:09Z"`

// obj builds an event object from fields, adding type and occurred_at
// unless the fields set them.
func obj(fields string) string {
	s := fields
	if !strings.Contains(s, `"type"`) {
		s = `"type":"page_view",` + s
	}
	if !strings.Contains(s, `"occurred_at"`) {
		s = okTime + "," + s
	}
	return "{" + strings.TrimSuffix(s, ",") + "}"
}

type wantErr struct{ field, msg string }

// checkErrors fails t unless errs are want, one by one: each with index, the
// field want names (any when it names none) and a message containing want's.
// No error may hold a NUL: the quarantine table cannot store it.
func checkErrors(t *testing.T, errs event.Errors, want []wantErr, index int) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, w := range want {
		e := errs[i]
		if e.Index != index || (w.field != "" && e.Field != w.field) || !strings.Contains(e.Message, w.msg) {
			t.Errorf("error %d = %+v,\nwant index %d, field %q, message ~%q", i, e, index, w.field, w.msg)
		}
		if strings.ContainsRune(e.Field+e.Message, 0) {
			t.Errorf("error %d holds a NUL, which the quarantine table cannot store: %q", i, e)
		}
	}
}

// TestDecodeRules has one case per validation rule, each valid case next to
// the invalid ones it borders.
func TestDecodeRules(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		errs []wantErr // nil: valid
	}{
		// The object itself.
		{"minimal", obj(""), nil},
		{"surrounding white space", " \n" + obj("") + "\n ", nil},
		{"not UTF-8", "{\"type\":\"a\xff\"," + okTime + "}", []wantErr{{"", "not valid UTF-8"}}},
		{"array", `[` + obj("") + `]`, []wantErr{{"", "must be a JSON object"}}},
		{"string", `"page_view"`, []wantErr{{"", "must be a JSON object"}}},
		{"null", `null`, []wantErr{{"", "must be a JSON object"}}},
		{"empty", ``, []wantErr{{"", "malformed JSON"}}},
		{"malformed", "{\"type\":\"a\",\n\"occurred_at\" 1}", []wantErr{{"", "malformed JSON: line 2, column 15"}}},
		{"unknown field", obj(`"colour":"red",`), []wantErr{{"colour", "unknown field"}}},
		{"many unknown fields are capped", obj(manyFields(25)), append(slices.Repeat([]wantErr{{"", "unknown field"}}, 10), wantErr{"", "15 more unknown fields"})},

		// event_id.
		{"event_id v7", obj(`"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55",`), nil},
		{"event_id v4", obj(`"event_id":"` + uuid.NewString() + `",`), nil},
		{"event_id null", obj(`"event_id":null,`), nil},
		{"event_id number", obj(`"event_id":12,`), []wantErr{{"event_id", "must be a string, got a number"}}},
		{"event_id not a UUID", obj(`"event_id":"abc",`), []wantErr{{"event_id", "must be a UUID"}}},
		{"event_id empty", obj(`"event_id":"",`), []wantErr{{"event_id", "must be a UUID"}}},
		{"event_id in braces", obj(`"event_id":"{0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55}",`), []wantErr{{"event_id", "must be a UUID"}}},
		{"event_id as URN", obj(`"event_id":"urn:uuid:0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55",`), []wantErr{{"event_id", "must be a UUID"}}},
		{"event_id without dashes", obj(`"event_id":"0193a0b46b7e7c3a9f1e2b9d4c1e8a55",`), []wantErr{{"event_id", "must be a UUID"}}},
		{"event_id nil UUID", obj(`"event_id":"00000000-0000-0000-0000-000000000000",`), []wantErr{{"event_id", "nil UUID"}}},

		// type.
		{"type dotted", obj(`"type":"payment_x.sub_type.v2",`), nil},
		{"type missing", `{` + okTime + `}`, []wantErr{{"type", "is required"}}},
		{"type null", `{"type":null,` + okTime + `}`, []wantErr{{"type", "is required"}}},
		{"type blank", obj(`"type":"  ",`), []wantErr{{"type", "must not be empty"}}},
		{"type not a string", obj(`"type":true,`), []wantErr{{"type", "must be a string, got a boolean"}}},
		{"type upper case", obj(`"type":"PageView",`), []wantErr{{"type", "lowercase dotted words"}}},
		{"type with space", obj(`"type":"page view",`), []wantErr{{"type", "lowercase dotted words"}}},
		{"type trailing dot", obj(`"type":"payment.",`), []wantErr{{"type", "lowercase dotted words"}}},
		{"type leading digit", obj(`"type":"1click",`), []wantErr{{"type", "lowercase dotted words"}}},
		{"type at the limit", obj(`"type":"` + strings.Repeat("a", 128) + `",`), nil},
		{"type too long", obj(`"type":"` + strings.Repeat("a", 129) + `",`), []wantErr{{"type", "129 characters long, the limit is 128"}}},

		// occurred_at.
		{"occurred_at with offset and fraction", obj(`"occurred_at":"2026-11-24T15:05:09.123456+01:00",`), nil},
		{"occurred_at missing", `{"type":"a"}`, []wantErr{{"occurred_at", "is required"}}},
		{"occurred_at a number", obj(`"occurred_at":1732457109,`), []wantErr{{"occurred_at", "must be a string, got a number"}}},
		{"occurred_at not RFC 3339", obj(`"occurred_at":"2026-11-24 14:05:09",`), []wantErr{{"occurred_at", "RFC 3339"}}},
		{"occurred_at without zone", obj(`"occurred_at":"2026-11-24T14:05:09",`), []wantErr{{"occurred_at", "RFC 3339"}}},
		{"occurred_at impossible date", obj(`"occurred_at":"2026-02-30T00:00:00Z",`), []wantErr{{"occurred_at", "RFC 3339"}}},
		{"occurred_at before 2000", obj(`"occurred_at":"1999-12-31T23:59:59Z",`), []wantErr{{"occurred_at", "before the year 2000"}}},
		{"occurred_at just within the skew", obj(`"occurred_at":"2026-11-25T14:59:59Z",`), nil},
		{"occurred_at too far ahead", obj(`"occurred_at":"2026-11-25T15:00:01Z",`), []wantErr{{"occurred_at", "more than 24h0m0s in the future"}}},

		// received_at, source, user_id.
		{"received_at given", obj(`"received_at":"2026-11-24T14:05:10Z",`), nil},
		{"received_at bad", obj(`"received_at":"now",`), []wantErr{{"received_at", "RFC 3339"}}},
		{"source", obj(`"source":"web",`), nil},
		{"source too long", obj(`"source":"` + strings.Repeat("é", 129) + `",`), []wantErr{{"source", "the limit is 128"}}},
		{"source with NUL", obj(`"source":"a\u0000",`), []wantErr{{"source", "NUL"}}},
		{"user_id", obj(`"user_id":"u-42",`), nil},
		{"user_id empty means none", obj(`"user_id":"",`), nil},
		{"user_id number", obj(`"user_id":42,`), []wantErr{{"user_id", "must be a string, got a number"}}},
		{"user_id too long", obj(`"user_id":"` + strings.Repeat("u", 257) + `",`), []wantErr{{"user_id", "the limit is 256"}}},
		{"user_id with NUL", obj(`"user_id":"\u0000",`), []wantErr{{"user_id", "NUL"}}},

		// properties.
		{"properties", obj(`"properties":{"a":[1,{"b":null}],"c":"\u00e9\ud83d\ude00"},`), nil},
		{"properties null", obj(`"properties":null,`), nil},
		{"properties array", obj(`"properties":[],`), []wantErr{{"properties", "must be a JSON object, got an array"}}},
		{"properties string", obj(`"properties":"{}",`), []wantErr{{"properties", "must be a JSON object, got a string"}}},
		{"properties with NUL", obj(`"properties":{"a":"x\u0000"},`), []wantErr{{"properties.a", "NUL"}}},
		{"properties with NUL in a key", obj(`"properties":{"\u0000":1},`), []wantErr{{`properties["\u0000"]`, "the key must not contain the NUL"}}},
		{"properties with an escaped backslash before u0000", obj(`"properties":{"a":"\\u0000"},`), nil},
		{"properties with a lone high surrogate", obj(`"properties":{"a":"\ud83d"},`), []wantErr{{"properties.a", "unpaired UTF-16 surrogate"}}},
		{"properties with a lone low surrogate", obj(`"properties":{"a":"\uDE00x"},`), []wantErr{{"properties.a", "unpaired UTF-16 surrogate"}}},
		{"properties with reversed surrogates", obj(`"properties":{"a":"\ude00\ud83d"},`), []wantErr{{"properties.a", "unpaired UTF-16 surrogate"}}},

		// payment.*.
		{"payment", obj(`"type":"payment.captured","properties":{"amount":"12.50","currency":"EUR"},`), nil},
		{"payment number amount", obj(`"type":"payment.captured","properties":{"amount":12.5,"currency":"EUR"},`), nil},
		{"payment max amount", obj(`"type":"payment.captured","properties":{"amount":"999999999999.999999","currency":"JPY"},`), nil},
		{"payment zero", obj(`"type":"payment.captured","properties":{"amount":0,"currency":"EUR"},`), nil},
		{"payment without properties", obj(`"type":"payment.captured",`), []wantErr{{"properties.amount", "is required"}, {"properties.currency", "is required"}}},
		{"payment amount null", obj(`"type":"payment.captured","properties":{"amount":null,"currency":"EUR"},`), []wantErr{{"properties.amount", "is required"}}},
		{"payment negative", obj(`"type":"payment.captured","properties":{"amount":-1,"currency":"EUR"},`), []wantErr{{"properties.amount", "must not be negative"}}},
		{"payment exponent", obj(`"type":"payment.captured","properties":{"amount":1e3,"currency":"EUR"},`), []wantErr{{"properties.amount", "decimal"}}},
		{"payment 13 integer digits", obj(`"type":"payment.captured","properties":{"amount":"1234567890123","currency":"EUR"},`), []wantErr{{"properties.amount", "at most 12 integer"}}},
		{"payment 7 decimals", obj(`"type":"payment.captured","properties":{"amount":"1.0000001","currency":"EUR"},`), []wantErr{{"properties.amount", "6 fractional"}}},
		{"payment amount with comma", obj(`"type":"payment.captured","properties":{"amount":"12,50","currency":"EUR"},`), []wantErr{{"properties.amount", "decimal"}}},
		{"payment amount boolean", obj(`"type":"payment.captured","properties":{"amount":true,"currency":"EUR"},`), []wantErr{{"properties.amount", "decimal"}}},
		{"payment currency lower case", obj(`"type":"payment.captured","properties":{"amount":"1","currency":"eur"},`), []wantErr{{"properties.currency", "ISO 4217"}}},
		{"payment currency unknown", obj(`"type":"payment.captured","properties":{"amount":"1","currency":"XYZ"},`), []wantErr{{"properties.currency", "ISO 4217"}}},
		{"payment currency number", obj(`"type":"payment.captured","properties":{"amount":"1","currency":978},`), []wantErr{{"properties.currency", "must be a string"}}},
		{"not a payment without the dot", obj(`"type":"payment","properties":{},`), nil},

		// audit.*.
		{"audit", obj(`"type":"audit.login","properties":{"actor":"ann","action":"login"},`), nil},
		{"audit with outcome", obj(`"type":"audit.login","properties":{"actor":"ann","action":"login","outcome":"denied"},`), nil},
		{"audit outcome null", obj(`"type":"audit.login","properties":{"actor":"ann","action":"login","outcome":null},`), nil},
		{"audit without properties", obj(`"type":"audit.login",`), []wantErr{{"properties.actor", "is required"}, {"properties.action", "is required"}}},
		{"audit blank actor", obj(`"type":"audit.login","properties":{"actor":" ","action":"login"},`), []wantErr{{"properties.actor", "must not be empty"}}},
		{"audit action not a string", obj(`"type":"audit.login","properties":{"actor":"a","action":["x"]},`), []wantErr{{"properties.action", "must be a string, got an array"}}},
		{"audit actor too long", obj(`"type":"audit.login","properties":{"actor":"` + strings.Repeat("a", 257) + `","action":"x"},`), []wantErr{{"properties.actor", "longer than 256"}}},
		{"audit outcome empty", obj(`"type":"audit.login","properties":{"actor":"a","action":"x","outcome":""},`), []wantErr{{"properties.outcome", "must not be empty"}}},

		// Every problem at once.
		{"several errors", `{"type":"Bad","occurred_at":"nope","user_id":1,"extra":true}`, []wantErr{
			{"extra", "unknown field"}, {"type", "lowercase"}, {"occurred_at", "RFC 3339"}, {"user_id", "must be a string"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, errs := event.Decode([]byte(tc.raw), event.Options{Index: 7, Now: now, AssignID: true})
			if tc.errs == nil {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				if ev.EventID == "" || !ev.ReceivedAt.Equal(now) || ev.Type == "" || ev.OccurredAt.IsZero() {
					t.Fatalf("accepted but incomplete: %+v", ev)
				}
				return
			}
			checkErrors(t, errs, tc.errs, 7)
			if ev.EventID != "" || ev.Type != "" {
				t.Errorf("a refused event came back filled in: %+v", ev)
			}
		})
	}
}

func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"x%02d":%d,`, i, i)
	}
	return b.String()
}

func TestDecodeAssignsIDsAndReceiveTime(t *testing.T) {
	ev, errs := event.Decode([]byte(obj(`"received_at":"2020-01-01T00:00:00Z",`)), event.Options{Now: now, AssignID: true})
	if errs != nil {
		t.Fatal(errs)
	}
	u, err := uuid.Parse(ev.EventID)
	if err != nil || u.Version() != 7 {
		t.Errorf("assigned id %q is not a UUIDv7", ev.EventID)
	}
	if !ev.ReceivedAt.Equal(now) {
		t.Errorf("received_at %s; the API's receive time %s must win over the client's", ev.ReceivedAt, now)
	}
	other, _ := event.Decode([]byte(obj("")), event.Options{Now: now, AssignID: true})
	if other.EventID == ev.EventID {
		t.Error("two events got the same id")
	}

	ev, errs = event.Decode([]byte(obj(`"event_id":"0193A0B4-6B7E-7C3A-9F1E-2B9D4C1E8A55",`)), event.Options{Now: now, AssignID: true})
	if errs != nil || ev.EventID != "0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55" {
		t.Errorf("a client's id is kept, in lower case: %q %v", ev.EventID, errs)
	}

	ev, _ = event.Decode([]byte(obj(`"occurred_at":"2026-11-24T15:05:09+01:00",`)), event.Options{Now: now, AssignID: true})
	if ev.OccurredAt.Location() != time.UTC || !ev.OccurredAt.Equal(time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)) {
		t.Errorf("occurred_at %s is not the same instant in UTC", ev.OccurredAt)
	}
}

// TestDecodeFromTopic: without AssignID (the stream's view) a record must
// already carry event_id and received_at.
func TestDecodeFromTopic(t *testing.T) {
	_, errs := event.Decode([]byte(obj("")), event.Options{Index: 3})
	if len(errs) != 2 || errs[0].Field != "event_id" || errs[1].Field != "received_at" || errs[0].Index != 3 {
		t.Errorf("record without id and received_at: %v", errs)
	}
	ev, errs := event.Decode([]byte(obj(`"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55","received_at":"2026-11-24T14:05:10Z",`)), event.Options{})
	if errs != nil || ev.EventID == "" || ev.ReceivedAt.IsZero() {
		t.Errorf("complete record refused: %v", errs)
	}
	// Zero Now disables the future bound (the stream replays old records).
	if _, errs := event.Decode([]byte(obj(`"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55","received_at":"2026-11-24T14:05:10Z","occurred_at":"2099-01-01T00:00:00Z",`)), event.Options{}); errs != nil {
		t.Errorf("future bound applied with zero Now: %v", errs)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	raw := obj(`"type":"payment.captured","user_id":"u<1>&","source":"web","properties":{ "amount" : "12.50", "currency":"EUR", "note":"a < b && c > d" },`)
	ev, errs := event.Decode([]byte(raw), event.Options{Now: now, AssignID: true})
	if errs != nil {
		t.Fatal(errs)
	}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"user_id":"u<1>&"`, `"properties":{"amount":"12.50","currency":"EUR","note":"a < b && c > d"}`, `"received_at":"2026-11-24T15:00:00Z"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("encoded %s lacks %s", b, want)
		}
	}
	if strings.HasSuffix(string(b), "\n") {
		t.Error("encoded event ends in a newline")
	}
	back, errs := event.Decode(b, event.Options{})
	if errs != nil {
		t.Fatal(errs)
	}
	if back.EventID != ev.EventID || back.Type != ev.Type || !back.OccurredAt.Equal(ev.OccurredAt) || !back.ReceivedAt.Equal(ev.ReceivedAt) ||
		back.UserID != ev.UserID || back.Source != ev.Source || string(back.Properties) != string(ev.Properties) {
		t.Errorf("round trip changed the event:\n%+v\n%+v", ev, back)
	}
	if back.Amount() != "12.50" || back.Prop("currency") != "EUR" || back.Prop("missing") != "" || !back.IsPayment() || back.IsAudit() {
		t.Errorf("accessors: amount %q currency %q", back.Amount(), back.Prop("currency"))
	}
}

func TestKey(t *testing.T) {
	withUser := event.Event{EventID: "0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55", UserID: "u-42"}
	if string(withUser.Key()) != "u-42" {
		t.Errorf("key %q, want the user id", withUser.Key())
	}
	noUser := event.Event{EventID: "0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55"}
	if string(noUser.Key()) != noUser.EventID {
		t.Errorf("key %q, want the event id", noUser.Key())
	}
}

// TestDecodeManyUnknownFieldsIsFast guards against quadratic work on a
// hostile event with a hundred thousand fields.
func TestDecodeManyUnknownFieldsIsFast(t *testing.T) {
	raw := obj(manyFieldsN(100_000))
	start := time.Now()
	_, errs := event.Decode([]byte(raw), event.Options{Now: now, AssignID: true})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("decoding %d bytes took %s", len(raw), took)
	}
	if len(errs) != 11 {
		t.Errorf("%d errors, want 10 listed and 1 counting the rest", len(errs))
	}
}

func manyFieldsN(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"f%d":0,`, i)
	}
	return b.String()
}

func TestCurrency(t *testing.T) {
	for code, want := range map[string]bool{"EUR": true, "USD": true, "JPY": true, "XAU": true, "eur": false, "EU": false, "EURO": false, "": false, "XYZ": false} {
		if got := event.IsCurrency(code); got != want {
			t.Errorf("IsCurrency(%q) = %v, want %v", code, got, want)
		}
	}
}

var benchEvent = []byte(`{"type":"page_view","occurred_at":"2026-11-24T14:05:09.123Z","source":"web","user_id":"user-12-34",` +
	`"properties":{"path":"/products/123","referrer":"https://www.example.com/search?q=item+123","screen":"1920x1080","session":"s-1-12"}}`)

func BenchmarkDecode(b *testing.B) {
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := event.Decode(benchEvent, event.Options{Now: now, AssignID: true}); errs != nil {
			b.Fatal(errs)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	ev, _ := event.Decode(benchEvent, event.Options{Now: now, AssignID: true})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
