package event

import (
	"bytes"
	"encoding/json"
	"io"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/acme/pipeline/internal/jsonscan"
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

	// The limits of limits.go, from both sides.
	limitSeed(`{"x":1e999999,"y":-1e-999999}`),
	limitSeed(`{"x":1.7976931348623157e308,"y":4.9406564584124654e-324,"z":9.99e308,"w":-0.0e-340}`),
	limitSeed(`{"x":1e309,"y":1e-341,"z":0e1001,"w":0e1073741823,"v":1E+99999999999999999999}`),
	limitSeed(`{"x":0.000001e314,"y":1.50e-339,"z":0.` + strings.Repeat("0", 339) + `1}`),
	limitSeed(`{"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`),
	limitSeed(`{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`),
	limitSeed(`{"a":` + strings.Repeat(`{"b":[`, 40) + `0` + strings.Repeat(`]}`, 40) + `}`),
	limitSeed(`{"a\u0000b":{"c.d":["\ud800","\udc00x","\ud800\u0041"]},"e":"\ud83d\ude00\\u0000"}`),
	`{"type":"a","occurred_at":"2026-11-24T14:05:09Z","user_id":"\ud800","source":"\u0000","\u0000":1}`,
}

// limitSeed is an event with properties p.
func limitSeed(p string) string {
	return `{"type":"a","occurred_at":"2026-11-24T14:05:09Z","properties":` + p + `}`
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
				// The stream stores errors in pipeline.quarantine (text
				// and jsonb).
				if s := e.Field + e.Message; strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
					t.Fatalf("error %q cannot be stored in PostgreSQL", e)
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
		if strings.ContainsRune(ev.Type+ev.Source+ev.UserID, 0) {
			t.Fatalf("accepted a NUL in a text field: %+v", ev)
		}
		if len(ev.Properties) > 0 {
			checkStorable(t, ev.Properties)
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

// checkStorable checks accepted properties against the limits with
// encoding/json: depth, NUL in strings and keys, magnitude of numbers.
func checkStorable(t *testing.T, props []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(props))
	dec.UseNumber()
	// 4096 bits hold every number within the limits exactly (at most
	// 309+340 significant digits).
	const prec = 4096
	limit, _, _ := big.ParseFloat("1e309", 10, prec, big.ToNearestEven)
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("accepted properties %q: %v", props, err)
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				if depth++; depth > MaxPropertiesDepth {
					t.Fatalf("accepted properties %d deep", depth)
				}
			} else {
				depth--
			}
		case string:
			if strings.ContainsRune(v, 0) {
				t.Fatalf("accepted a NUL in properties %q", props)
			}
		case json.Number:
			f, _, err := big.ParseFloat(string(v), 10, prec, big.ToNearestEven)
			if err != nil || f.Abs(f).Cmp(limit) >= 0 {
				t.Fatalf("accepted number %s: %v", v, err)
			}
		}
	}
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

func TestUnknownFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want []string
	}{
		{"none", `{"type":"a","occurred_at":"x","properties":{"zz":1}}`, nil},
		{"sorted, once each", `{"b":1,"type":"a","a":2,"b":3}`, []string{"a", "b"}},
		{"escaped names decoded", `{"\u0062\u0063":null,"typ\u0065":"a"}`, []string{"bc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unknownFields(jsonscan.SplitObject([]byte(tc.raw))); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("unknownFields = %q, want %q", got, tc.want)
			}
		})
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

// FuzzNumberLimits: numberProblem accepts a number exactly when its integer
// part (computed with math/big) has at most MaxNumberIntDigits digits, its
// scale at most MaxNumberFracDigits, and its exponent is within
// ±MaxNumberExponent.
func FuzzNumberLimits(f *testing.F) {
	f.Add("1", "", int16(308), false)
	f.Add("9", "99", int16(306), true)
	f.Add("0", "000001", int16(314), false)
	f.Add("0", "", int16(-340), false)
	f.Add("4", "9406564584124654", int16(-324), true)
	f.Add("0", "5", int16(1001), false)
	f.Fuzz(func(t *testing.T, intPart, frac string, exp int16, neg bool) {
		if len(intPart) > 700 || len(frac) > 700 || strings.Trim(intPart+frac, "0123456789") != "" {
			return
		}
		if intPart = strings.TrimLeft(intPart, "0"); intPart == "" {
			intPart = "0"
		}
		lit := intPart
		if neg {
			lit = "-" + lit
		}
		if frac != "" {
			lit += "." + frac
		}
		lit += "e" + strconv.Itoa(int(exp))
		r, ok := new(big.Rat).SetString(lit)
		if !ok {
			t.Fatalf("big.Rat cannot parse %s", lit)
		}
		whole := new(big.Int).Quo(new(big.Int).Abs(r.Num()), r.Denom())
		intDigits := 0
		if whole.Sign() > 0 {
			intDigits = len(whole.String())
		}
		scale := max(0, len(frac)-int(exp))
		want := intDigits <= MaxNumberIntDigits && scale <= MaxNumberFracDigits && exp >= -MaxNumberExponent && exp <= MaxNumberExponent
		if got := numberProblem([]byte(lit)); (got == "") != want {
			t.Fatalf("numberProblem(%s) = %q; %d integer digits, scale %d", lit, got, intDigits, scale)
		}
	})
}
