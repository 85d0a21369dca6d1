package blueprint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/acme/pipeline/internal/jsonscan"
)

// jvalue is a decoded JSON value that, unlike map[string]any, keeps the order
// of an object's keys and every duplicate key, so that problems come out in
// document order and a key written twice is reported instead of silently
// taking the last value.
type jvalue struct {
	kind    jkind
	members []jmember // object
	elems   []*jvalue // array
	str     string    // string
	num     json.Number
	b       bool
}

type jmember struct {
	key string
	val *jvalue
}

type jkind int

const (
	jObject jkind = iota
	jArray
	jString
	jNumber
	jBool
	jNull
)

// maxDepth bounds nesting; a blueprint needs four levels.
const maxDepth = 32

// describe names v's JSON type for messages, with the value when it is short.
func (v *jvalue) describe() string {
	switch v.kind {
	case jObject:
		return "an object"
	case jArray:
		return "an array"
	case jString:
		s := v.str
		if utf8.RuneCountInString(s) > 40 {
			s = string([]rune(s)[:40]) + "…"
		}
		return fmt.Sprintf("a string (%q)", s)
	case jNumber:
		return "a number (" + v.num.String() + ")"
	case jBool:
		return fmt.Sprintf("a boolean (%t)", v.b)
	default:
		return "null"
	}
}

// posError is a JSON syntax error at a byte offset.
type posError struct {
	off int64
	msg string
}

func (e *posError) Error() string { return e.msg }

// decodeTree decodes one JSON document.
func decodeTree(data []byte) (*jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readValue(dec, data, 0)
	if err != nil {
		return nil, err
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, &posError{int64(jsonscan.SkipSpace(data, int(off))), "unexpected data after the end of the document"}
	}
	return v, nil
}

func readValue(dec *json.Decoder, data []byte, depth int) (*jvalue, error) {
	start := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, tokenError(err, data)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return nil, &posError{start, "nested too deeply"}
		}
		if t == '{' {
			v := &jvalue{kind: jObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, tokenError(err, data)
				}
				key, _ := kt.(string) // the decoder only yields string keys
				val, err := readValue(dec, data, depth+1)
				if err != nil {
					return nil, err
				}
				v.members = append(v.members, jmember{key, val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, tokenError(err, data)
			}
			return v, nil
		}
		v := &jvalue{kind: jArray}
		for dec.More() {
			e, err := readValue(dec, data, depth+1)
			if err != nil {
				return nil, err
			}
			v.elems = append(v.elems, e)
		}
		if _, err := dec.Token(); err != nil {
			return nil, tokenError(err, data)
		}
		return v, nil
	case string:
		return &jvalue{kind: jString, str: t}, nil
	case json.Number:
		return &jvalue{kind: jNumber, num: t}, nil
	case bool:
		return &jvalue{kind: jBool, b: t}, nil
	default:
		return &jvalue{kind: jNull}, nil
	}
}

// tokenError turns a decoder error into a posError.
func tokenError(err error, data []byte) error {
	if at, ok := jsonscan.SyntaxOffset(err); ok {
		return &posError{int64(at), err.Error()}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &posError{int64(len(data)), "unexpected end of input (unclosed object, array or string?)"}
	}
	return &posError{0, err.Error()}
}

// lineCol converts a byte offset to a 1-based line and column (in characters).
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	line, start := jsonscan.Line(data, int(off))
	return line, utf8.RuneCount(data[start:off]) + 1
}

// syntaxProblem reports a decode failure with its position.
func syntaxProblem(data []byte, err error) Problem {
	var pe *posError
	if !errors.As(err, &pe) {
		return Problem{Message: "malformed JSON: " + err.Error()}
	}
	line, col := lineCol(data, pe.off)
	return Problem{Message: fmt.Sprintf("malformed JSON at line %d, column %d: %s", line, col, pe.msg)}
}
