package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// seeds are JSON documents, valid and not, for the fuzz tests: events as the
// API receives them, escapes, nesting, numbers at the edges.
var seeds = []string{
	`{"type":"page_view","occurred_at":"2026-11-24T14:05:09Z"}`,
	`{"type":"payment.captured","occurred_at":"2026-11-24T14:05:09Z","properties":{"amount":"12.50","currency":"EUR"}}`,
	`{ "type" : "a" , "occurred_at":"2026-11-24T14:05:09Z", "properties" : { "a" : "\ud83d\ude00 <&> \\u0000" , "b":[1.5e300,{"c":null}] } }`,
	`{"typ\u0065":"a","occurred_at":"2026-11-24T14:05:09Z","user_id":"\"q\"\n\u2028\u0001"}`,
	`{"type":"Bad","occurred_at":"nope","user_id":1,"extra":true}`,
	`{"type":"a","type":"b"}`,
	`{"a":{"b":"}\"{"},"c":[1,"]",{}],"d":-1.5e+3,"e":true,"f":null,"\u0061":2}`,
	`{"a\u0000b":{"c.d":["\ud800","\udc00x","\ud800\u0041"]},"e":"\ud83d\ude00\\u0000"}`,
	`{"x":1e999999,"y":-1e-999999,"z":0.` + strings.Repeat("0", 339) + `1}`,
	`{"a":` + strings.Repeat(`{"b":[`, 40) + `0` + strings.Repeat(`]}`, 40) + `}`,
	`[]`, `null`, ``, `{`, "\xff",
}

// FuzzValid: Valid is json.Valid.
func FuzzValid(f *testing.F) {
	for _, s := range append(seeds, `-0.5e+10`, `01`, `1.`, `.5`, `-`, `"\u12"`, `"\x"`, "\"\x01\"", `[1,]`, `{"a":1,}`, `{"a" 1}`,
		` [ true , false , null ] `, `tru`, `nul`, `"\/\b\f\n\r\t\u00e9"`, "\"\xff\"", `{"a":{"b":[[]]}}`, `[1 2]`, `{"a":1 "b":2}`, `[1,,2]`,
		strings.Repeat("[", 10000)+strings.Repeat("]", 10000), strings.Repeat("[", 10001)+strings.Repeat("]", 10001)) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

// FuzzSplitObject: on any valid JSON object, SplitObject finds the same
// members as json.Unmarshal into a map.
func FuzzSplitObject(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		got := SplitObject(raw)
		distinct := map[string]bool{}
		for _, m := range got {
			distinct[string(m.Name)] = true
		}
		if len(distinct) != len(want) {
			t.Fatalf("%d distinct names, want %d", len(distinct), len(want))
		}
		for k, v := range want {
			if gv, ok := got.Get(k); !ok || !bytes.Equal(gv, v) {
				t.Fatalf("member %q = %s, want %s", k, gv, v)
			}
		}
	})
}

func TestSplitObjectKeepsRawValues(t *testing.T) {
	raw := []byte(`{"a" : "x" ,"b":{"c":[1,2]},"a":3,"\u0062\u0063":null}`)
	got := SplitObject(raw)
	want := Members{{Name: []byte("a"), Value: []byte(`"x"`)}, {Name: []byte("b"), Value: []byte(`{"c":[1,2]}`)},
		{Name: []byte("a"), Value: []byte("3")}, {Name: []byte("bc"), Value: []byte("null")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SplitObject = %q, want %q", got, want)
	}
	if v, _ := got.Get("a"); string(v) != "3" {
		t.Errorf(`Get("a") = %s, want the last, 3`, v)
	}
	if v, ok := got.Get("z"); ok {
		t.Errorf(`Get("z") = %s, want none`, v)
	}
}

func TestSkipValue(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		at, want int
	}{
		{"string with escapes", `"a\"b\\" ,`, 0, 8},
		{"unterminated string", `"abc\"`, 0, 6},
		{"object with brackets in strings", `{"a":"}]","b":[1,{}]} x`, 0, 21},
		{"array", `[1, [2], "]"],`, 0, 13},
		{"number before a comma", `-1.5e3,2`, 0, 6},
		{"literal at the end", `[true`, 1, 5},
		{"number before white space", "12\n", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SkipValue([]byte(tc.in), tc.at); got != tc.want {
				t.Errorf("SkipValue(%q, %d) = %d, want %d", tc.in, tc.at, got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{`"plain"`, "plain", false},
		{`"a\u0062\n"`, "ab\n", false},
		{`"\ud800"`, "\ufffd", false},
		{"\"\xff\"", "\ufffd", false},
		{`12`, "", true},
	} {
		got, err := String([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("String(%s) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestKind(t *testing.T) {
	for in, want := range map[string]string{
		`"x"`: "a string", ` {}`: "an object", `[1]`: "an array", `true`: "a boolean", `false`: "a boolean",
		`null`: "null", `-1`: "a number", `7`: "a number", ``: "nothing", " \n": "nothing",
	} {
		if got := Kind([]byte(in)); got != want {
			t.Errorf("Kind(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPosition(t *testing.T) {
	doc := []byte("{\n  \"a\": 1,\n  x\n}")
	for _, tc := range []struct {
		at, line, col, start int
	}{
		{0, 1, 1, 0},
		{1, 1, 2, 0},
		{2, 2, 1, 2},
		{14, 3, 3, 12},
		{-5, 1, 1, 0},
		{len(doc), 4, 2, 16},
		{len(doc) + 9, 4, 2, 16},
	} {
		line, col := Position(doc, tc.at)
		l, start := Line(doc, tc.at)
		if line != tc.line || col != tc.col || l != tc.line || start != tc.start {
			t.Errorf("at %d: Position %d:%d, Line %d from %d; want %d:%d from %d", tc.at, line, col, l, start, tc.line, tc.col, tc.start)
		}
	}
}

func TestSyntaxOffset(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		at   int
		ok   bool
	}{
		{"bad byte", `{"a" 1}`, 5, true},
		{"at the start", `}`, 0, true},
		{"end of input: the last byte", `{"a":`, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := json.Unmarshal([]byte(tc.doc), new(json.RawMessage))
			at, ok := SyntaxOffset(fmt.Errorf("wrapped: %w", err))
			if at != tc.at || ok != tc.ok {
				t.Errorf("SyntaxOffset(%v) = %d, %v; want %d, %v", err, at, ok, tc.at, tc.ok)
			}
		})
	}
	if _, ok := SyntaxOffset(errors.New("not JSON's")); ok {
		t.Error("SyntaxOffset found an offset in an error without one")
	}
}

// benchDoc is an event batch as the API receives it.
var benchDoc = []byte(`[` + strings.Repeat(`{"event_id":"0192f5b2-7c1e-7000-8000-000000000001","type":"payment.succeeded","occurred_at":"2026-11-24T17:03:00Z","user_id":"u-42","properties":{"amount":"12.34","currency":"EUR","path":"/checkout","items":[1,2,3],"ok":true}},`, 99) +
	`{"type":"page_view"}]`)

// BenchmarkValid compares Valid with encoding/json's on an API batch; the
// doc comment's claim rests on it (`go test -bench Valid ./internal/jsonscan`).
func BenchmarkValid(b *testing.B) {
	b.Run("jsonscan", func(b *testing.B) {
		b.SetBytes(int64(len(benchDoc)))
		for b.Loop() {
			if !Valid(benchDoc) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(benchDoc)))
		for b.Loop() {
			if !json.Valid(benchDoc) {
				b.Fatal("invalid")
			}
		}
	})
}
