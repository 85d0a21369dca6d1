package event_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/acme/pipeline/event"
)

// nested returns properties nesting depth containers, counting properties
// itself: {"a":[[...]]} with depth-1 arrays.
func nested(depth int) string {
	return `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

// nestedObjects is nested with objects: {"a":{"a":...{}}}.
func nestedObjects(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat("}", depth-1)
}

// TestDecodeLimits has the values PostgreSQL's jsonb and text refuse, or
// that lie beyond a documented limit, next to the accepted values at each
// limit. Every refusal names the path of the value.
func TestDecodeLimits(t *testing.T) {
	digits := func(n int) string { return strings.Repeat("9", n) }
	cases := []struct {
		name  string
		props string    // the properties object; "" to use fields instead
		field string    // extra top-level fields (for text fields)
		errs  []wantErr // nil: valid
	}{
		// Numbers: what issue 13 sent, then each limit from both sides.
		{"number 1e999999", `{"x":1e999999}`, "", []wantErr{{"properties.x", "number 1e999999 is out of the range PostgreSQL can store: 1000000 digits before the decimal point, the limit is 309"}}},
		{"number -1e-999999", `{"x":-1e-999999}`, "", []wantErr{{"properties.x", "number -1e-999999 is out of the range PostgreSQL can store: 999999 digits after the decimal point, the limit is 340"}}},
		{"largest float64", `{"x":1.7976931348623157e308,"y":-1.7976931348623157E+308}`, "", nil},
		{"309 integer digits", `{"x":` + digits(309) + `,"y":9.99e308,"z":0.000001e314}`, "", nil},
		{"310 integer digits", `{"x":` + digits(310) + `}`, "", []wantErr{{"properties.x", "out of range: 310 digits before the decimal point, the limit is 309 (PostgreSQL would store it"}}},
		{"1e309", `{"x":1e309}`, "", []wantErr{{"properties.x", "number 1e309 is out of range: 310 digits"}}},
		{"leading fraction zeros do not count", `{"x":0.000001e312}`, "", nil},
		{"PostgreSQL's largest", `{"x":9.9e131071}`, "", []wantErr{{"properties.x", "out of range: 131072 digits before"}}},
		{"past PostgreSQL's largest", `{"x":1e131072}`, "", []wantErr{{"properties.x", "out of the range PostgreSQL can store: 131073 digits before"}}},
		{"smallest float64", `{"x":4.9406564584124654e-324,"y":5e-324,"z":-2.2250738585072014e-308}`, "", nil},
		{"340 fraction digits", `{"x":0.` + strings.Repeat("0", 339) + `1,"y":1e-340,"z":0e-340,"w":1.5e-339}`, "", nil},
		{"341 fraction digits", `{"x":0.` + strings.Repeat("0", 340) + `1}`, "", []wantErr{{"properties.x", "341 digits after the decimal point, the limit is 340"}}},
		{"trailing zeros count", `{"x":1.50e-339}`, "", []wantErr{{"properties.x", "341 digits after"}}},
		{"zero's scale counts", `{"x":0e-341}`, "", []wantErr{{"properties.x", "341 digits after"}}},
		{"past PostgreSQL's smallest", `{"x":0e-16384}`, "", []wantErr{{"properties.x", "out of the range PostgreSQL can store: 16384 digits after"}}},
		{"exponent at the limit", `{"x":0e1000,"y":0.` + strings.Repeat("0", 700) + `1e1000,"z":1E+0000000000000000000000308}`, "", nil},
		{"exponent past the limit", `{"x":0e1001}`, "", []wantErr{{"properties.x", "number 0e1001 is out of range: exponent 1001, the limit is ±1000"}}},
		{"exponent past PostgreSQL's", `{"x":0e1073741823}`, "", []wantErr{{"properties.x", "out of the range PostgreSQL can store: exponent 1073741823"}}},
		{"exponent of 30 digits", `{"x":-0.0e-999999999999999999999999999999}`, "", []wantErr{{"properties.x", "out of the range PostgreSQL can store: exponent -9999999999999999999…, the limit is ±1000"}}},
		{"plain numbers", `{"a":0,"b":-0,"c":-12.5,"d":1e2,"e":[1,2.5e-3,-7E+2]}`, "", nil},

		// Nesting.
		{"64 deep", nested(64), "", nil},
		{"64 deep in objects", nestedObjects(64), "", nil},
		{"65 deep", nested(65), "", []wantErr{{"properties.a" + strings.Repeat("[0]", 63), "deeper than the limit of 64 levels"}}},
		{"65 deep in objects", nestedObjects(65), "", []wantErr{{"properties" + strings.Repeat(".a", 64), "deeper than the limit of 64 levels"}}},
		{"3000 deep is one error", nested(3000), "", []wantErr{{"properties.a" + strings.Repeat("[0]", 63), "deeper than the limit"}}},
		{"deep after siblings", `{"a":[1,{"b":[` + nested(63) + `]}]}`, "", []wantErr{{"properties.a[1].b[0].a" + strings.Repeat("[0]", 59), "deeper than"}}},

		// Strings and keys in properties: each problem at its path.
		{"NUL", `{"x":"a\u0000b"}`, "", []wantErr{{"properties.x", "must not contain the NUL character (\\u0000): PostgreSQL cannot store it"}}},
		{"NUL deep", `{"a":[0,1,2,{"b":"\u0000"}]}`, "", []wantErr{{"properties.a[3].b", "NUL"}}},
		{"NUL with white space around", "{ \"x\" : 1 ,\n \"a\" : [ 0 , { \"b\" : 1e999 , \"c\" : \"\\u0000\" } ] }", "", []wantErr{{"properties.a[1].b", "1000 digits"}, {"properties.a[1].c", "NUL"}}},
		{"NUL in a key", `{"a\u0000b":1}`, "", []wantErr{{`properties["a\u0000b"]`, "the key must not contain the NUL character"}}},
		{"NUL in a nested key", `{"a":{"b.c":{"\u0000":true}}}`, "", []wantErr{{`properties.a["b.c"]["\u0000"]`, "the key must not"}}},
		{"lone high surrogate at the end", `{"x":"a\ud800"}`, "", []wantErr{{"properties.x", "unpaired UTF-16 surrogate escape (\\ud800)"}}},
		{"high surrogate then a letter", `{"x":"\uD800x"}`, "", []wantErr{{"properties.x", "(\\ud800)"}}},
		{"high surrogate then another escape", `{"x":"\ud800\u0041"}`, "", []wantErr{{"properties.x", "(\\ud800)"}}},
		{"two high surrogates", `{"x":"\ud800\ud800"}`, "", []wantErr{{"properties.x", "(\\ud800)"}}},
		{"lone low surrogate", `{"x":"\udc00"}`, "", []wantErr{{"properties.x", "(\\udc00)"}}},
		{"surrogate in a key", `{"\udfff":1}`, "", []wantErr{{`properties["\udfff"]`, "the key must not contain an unpaired"}}},
		{"escapes PostgreSQL takes", `{"x":"\ud83d\ude00 \uffff \ufffe \u0001 \\u0000 \\\ud83d\ude00 \" \/","\u00e9":"\u2028"}`, "", nil},

		// Top-level text fields: PostgreSQL's text refuses the same.
		{"NUL in source", "", `"source":"web\u0000"`, []wantErr{{"source", "NUL"}}},
		{"surrogate in user_id", "", `"user_id":"u\ud800"`, []wantErr{{"user_id", "unpaired UTF-16 surrogate escape (\\ud800)"}}},
		{"surrogate in type", "", `"type":"\udc00"`, []wantErr{{"type", "unpaired"}}},
		{"NUL in event_id", "", `"event_id":"\u0000"`, []wantErr{{"event_id", "NUL"}}},
		{"escaped pair in user_id", "", `"user_id":"\ud83d\ude00"`, nil},
		{"NUL in an unknown field's name", "", `"\u0000x":1`, []wantErr{{`"\u0000x"`, "unknown field"}}},

		// Several problems: each listed, up to ten, then counted.
		{"every problem listed", `{"a":1e999,"b":"\u0000","c":` + nested(64) + `}`, "", []wantErr{
			{"properties.a", "1000 digits before"}, {"properties.b", "NUL"}, {"properties.c.a" + strings.Repeat("[0]", 62), "deeper"}}},
		{"problems are capped", `{"a":[` + strings.TrimSuffix(strings.Repeat("1e999,", 25), ",") + `]}`, "", append(
			slices.Repeat([]wantErr{{"", "1000 digits before"}}, 10), wantErr{"properties", "15 more values the warehouse cannot store"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fields := tc.field
			if tc.props != "" {
				fields = `"properties":` + tc.props
			}
			_, errs := event.Decode([]byte(obj(fields+",")), event.Options{Index: 4, Now: now, AssignID: true})
			if tc.errs == nil {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			checkErrors(t, errs, tc.errs, 4)
		})
	}
}

// TestDecodeLimitsFromTopic: the stream cleans with the same rules, so a
// record another producer wrote with such a value is quarantined with the
// reason, not loaded.
func TestDecodeLimitsFromTopic(t *testing.T) {
	raw := obj(`"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55","received_at":"2026-11-24T14:05:10Z","properties":{"x":1e999999},`)
	if _, errs := event.Decode([]byte(raw), event.Options{}); len(errs) != 1 || errs[0].Field != "properties.x" {
		t.Errorf("record with 1e999999: %v", errs)
	}
}

func TestDecodeLimitsLongValues(t *testing.T) {
	// A long key and a long value cost nothing special, and a long key is
	// cut in the error's path.
	long := strings.Repeat("k", 5000)
	_, errs := event.Decode([]byte(obj(fmt.Sprintf(`"properties":{"%s":"%s","%s.":"\u0000"},`, long, strings.Repeat("v", 1<<20), long))), event.Options{Now: now, AssignID: true})
	if len(errs) != 1 || errs[0].Field != `properties["`+strings.Repeat("k", 60)+`…"]` {
		t.Errorf("errors %v", errs)
	}
}

// TestDecodeCompactsProperties: white space between tokens goes, white space
// inside strings stays (the limit scan tells which).
func TestDecodeCompactsProperties(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":"x y","b":["\t", " "]}`:   `{"a":"x y","b":["\t"," "]}`,
		"{\"a\":\"x y\",\"b\":[\" \"]}": `{"a":"x y","b":[" "]}`,
		"{\n\t\"a\" :\r1 }":             `{"a":1}`,
	} {
		ev, errs := event.Decode([]byte(obj(`"properties":`+in+",")), event.Options{Now: now, AssignID: true})
		if errs != nil || string(ev.Properties) != want {
			t.Errorf("properties %q became %q, want %q (%v)", in, ev.Properties, want, errs)
		}
	}
}

// benchNested has the shapes the limit checks look into: nested objects and
// arrays, numbers with fractions and exponents, escapes in strings.
var benchNested = []byte(`{"type":"checkout.completed","occurred_at":"2026-11-24T14:05:09.123Z","source":"web","user_id":"user-12-34",` +
	`"properties":{"cart":{"items":[{"sku":"A-1","qty":2,"price":12.5},{"sku":"B-22","qty":1,"price":3.99e2}],"total":424.0},` +
	`"coupon":null,"flags":[true,false],"note":"caf\u00e9 \"quoted\" \ud83d\ude00","ratio":-0.125,"geo":{"lat":52.52,"lon":13.405}}}`)

func BenchmarkDecodeNested(b *testing.B) {
	b.SetBytes(int64(len(benchNested)))
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := event.Decode(benchNested, event.Options{Now: now, AssignID: true}); errs != nil {
			b.Fatal(errs)
		}
	}
}
