package event

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var fuzzNow = time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)

var fuzzSeeds = []string{
	`{"type":"page_view","occurred_at":"2026-11-24T14:05:09Z"}`,
	`{"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55","type":"a","occurred_at":"2026-11-24T14:05:09Z","user_id":"u","source":"s"}`,
	`{"type":"payment.captured","occurred_at":"2026-11-24T14:05:09Z","properties":{"amount":"12.50","currency":"EUR"}}`,
	`{"type":"audit.login","occurred_at":"2026-11-24T14:05:09Z","properties":{"actor":"a","action":"b","outcome":"c"}}`,
	`{ "type" : "a" , "occurred_at":"2026-11-24T14:05:09Z", "properties" : { "a" : "\ud83d\ude00 <&> \\u0000" , "b":[1.5e300,{"c":null}] } }`,
	`{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":{"a":"\ud83d"}}`,
	`{"typ\u0065":"a","occurred_at":"2026-11-24T14:05:09Z","user_id":"\"q\"\n\u2028\u0001"}`,
	`{"type":"Bad","occurred_at":"nope","user_id":1,"extra":true}`,
	`[]`, `null`, ``, `{`, "\xff", `{"type":"a","type":"b","occurred_at":"2026-11-24T14:05:09Z"}`,
}

// FuzzDecode: Decode never panics; every error carries the index it was
// given; an accepted event has a proper id, and its topic encoding decodes
// (as the stream decodes it) to the same event.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, assign bool) {
		keep := bytes.Clone(raw)
		ev, errs := Decode(raw, Options{Index: 5, Now: fuzzNow, AssignID: assign})
		if !bytes.Equal(raw, keep) {
			t.Fatal("Decode changed its input")
		}
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
		// The event must not share memory with the input (the API reuses
		// its request buffers).
		for i := range raw {
			raw[i] = 'X'
		}
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("Marshal produced invalid JSON: %s", b)
		}
		back, errs := Decode(b, Options{Now: fuzzNow})
		if errs != nil {
			t.Fatalf("topic encoding %s does not decode: %v", b, errs)
		}
		if back.EventID != ev.EventID || back.Type != ev.Type || !back.OccurredAt.Equal(ev.OccurredAt) ||
			!back.ReceivedAt.Equal(ev.ReceivedAt) || back.Source != ev.Source || back.UserID != ev.UserID ||
			!bytes.Equal(back.Properties, ev.Properties) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, back)
		}
		if ev.IsPayment() {
			if _, err := ParseMicros(ev.Amount()); err != nil {
				t.Fatalf("accepted payment amount %q does not parse: %v", ev.Amount(), err)
			}
		}
		if _, err := ev.ToRow(0, 0); err != nil {
			t.Fatalf("accepted event has no silver row: %v", err)
		}
	})
}

// FuzzSplitObject: on any valid JSON object, splitObject finds the same
// members as json.Unmarshal into a map.
func FuzzSplitObject(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":{"b":"}\"{"},"c":[1,"]",{}],"d":-1.5e+3,"e":true,"f":null,"\u0061":2}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		got := splitObject(raw)
		distinct := map[string]bool{}
		for _, m := range got {
			distinct[string(m.name)] = true
		}
		if len(distinct) != len(want) {
			t.Fatalf("%d distinct names, want %d", len(distinct), len(want))
		}
		for k, v := range want {
			if gv, ok := got.get(k); !ok || !bytes.Equal(gv, v) {
				t.Fatalf("member %q = %s, want %s", k, gv, v)
			}
		}
	})
}

// FuzzMarshal: Marshal writes what encoding/json writes with HTML escaping
// off.
func FuzzMarshal(f *testing.F) {
	f.Add("0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55", "a", "web", "u<1>&\"\\\n\x01\u2028\xff", `{"a":[1, 2]}`, int64(1732457109123456789))
	f.Add("", "", "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, id, typ, source, user, props string, nanos int64) {
		if props != "" && !json.Valid([]byte(props)) {
			return
		}
		e := Event{EventID: id, Type: typ, Source: source, UserID: user, Properties: json.RawMessage(props),
			OccurredAt: time.Unix(0, nanos).UTC(), ReceivedAt: time.Unix(0, nanos/2)}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		wantErr := enc.Encode(e)
		got, err := e.Marshal()
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("Marshal error %v, encoding/json error %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))) {
			t.Fatalf("Marshal\n%s\nencoding/json\n%s", got, buf.Bytes())
		}
	})
}

func TestSplitObjectKeepsRawValues(t *testing.T) {
	raw := []byte(`{"a" : "x" ,"b":{"c":[1,2]},"a":3,"\u0062\u0063":null}`)
	got := splitObject(raw)
	want := members{{[]byte("a"), []byte(`"x"`)}, {[]byte("b"), []byte(`{"c":[1,2]}`)}, {[]byte("a"), []byte("3")}, {[]byte("bc"), []byte("null")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitObject = %q, want %q", got, want)
	}
	if v, _ := got.get("a"); string(v) != "3" {
		t.Errorf(`get("a") = %s, want the last, 3`, v)
	}
	if u := got.unknown(); !reflect.DeepEqual(u, []string{"a", "b", "bc"}) {
		t.Errorf("unknown() = %q", u)
	}
}

// FuzzValidType: validType is typeRe without the regexp engine.
func FuzzValidType(f *testing.F) {
	for _, s := range []string{"page_view", "payment.captured", "a.b_1.c", "", "a.", ".a", "a..b", "1a", "a._b", "A", "a-b", "a.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validType(s), typeRe.MatchString(s); got != want {
			t.Fatalf("validType(%q) = %v, typeRe says %v", s, got, want)
		}
	})
}

// FuzzValidJSON: validJSON is json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range append(fuzzSeeds, `-0.5e+10`, `01`, `1.`, `.5`, `-`, `"\u12"`, `"\x"`, "\"\x01\"", `[1,]`, `{"a":1,}`, `{"a" 1}`,
		` [ true , false , null ] `, `tru`, `nul`, `"\/\b\f\n\r\t\u00e9"`, "\"\xff\"", `{"a":{"b":[[]]}}`, strings.Repeat("[", 10000)+strings.Repeat("]", 10000),
		strings.Repeat("[", 10001)+strings.Repeat("]", 10001)) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}
