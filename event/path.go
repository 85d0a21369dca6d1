package event

import (
	"strconv"
	"unicode/utf8"

	"github.com/acme/pipeline/internal/jsonscan"
)

// Paths name a value inside an event in errors: properties.a[3].b. They must
// never hold a character PostgreSQL refuses, because the stream stores them
// in pipeline.quarantine (text and jsonb).

// pathTo names the value or member name that starts at p[at], p being
// properties: a member whose name is a plain word as .name, any other as
// ["name"] with the name as written in the event (escapes stay escapes, so
// that a NUL never reaches the error, the API's response or the quarantine
// table), an array element as [i]. It walks p again from the start, which
// costs nothing while nothing is wrong.
func pathTo(p []byte, at int) string {
	b := make([]byte, 0, 64)
	b = append(b, "properties"...)
	for i := 0; i < at; {
		if p[i] == '{' {
			i = descendObject(p, i, at, &b)
			continue
		}
		j := jsonscan.SkipSpace(p, i+1)
		for index := 0; ; index++ {
			end := jsonscan.SkipValue(p, j)
			if at < end {
				b = append(b, '[')
				b = strconv.AppendInt(b, int64(index), 10)
				b = append(b, ']')
				break
			}
			j = jsonscan.SkipSpace(p, jsonscan.SkipSpace(p, end)+1) // past the comma
		}
		i = j
	}
	return string(b)
}

// descendObject appends to *path the member of the object at p[i] that at
// lies in, and returns where that member's value starts, or at when at is
// the member's name.
func descendObject(p []byte, i, at int, path *[]byte) int {
	for i = jsonscan.SkipSpace(p, i+1); ; {
		keyEnd := jsonscan.SkipValue(p, i)
		if i == at {
			*path = appendName(*path, p[i+1:keyEnd-1])
			return at
		}
		v := jsonscan.SkipSpace(p, jsonscan.SkipSpace(p, keyEnd)+1) // past the colon
		end := jsonscan.SkipValue(p, v)
		if at < end {
			*path = appendName(*path, p[i+1:keyEnd-1])
			return v
		}
		i = jsonscan.SkipSpace(p, jsonscan.SkipSpace(p, end)+1) // past the comma
	}
}

// appendName appends a member name (as written, without quotes) to a path.
func appendName(b, name []byte) []byte {
	plain := plainName(name)
	if utf8.RuneCount(name) > 60 {
		name = []byte(truncate(string(name), 60))
	}
	if plain {
		return append(append(b, '.'), name...)
	}
	b = append(b, `["`...)
	b = append(b, name...)
	return append(b, `"]`...)
}

// plainName reports whether a member name can follow a dot in a path
// unquoted: letters, digits, _, - and $, or any non-ASCII character.
func plainName(name []byte) bool {
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$' || c >= 0x80) {
			return false
		}
	}
	return len(name) > 0
}

// displayName is a decoded field name as an error names it: as it is, or,
// when it holds a control character (NUL among them), JSON-quoted so that
// the character is spelled out as an escape.
func displayName(name string) string {
	name = truncate(name, 60)
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return string(AppendJSONString(nil, name))
		}
	}
	return name
}
