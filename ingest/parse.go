package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/jsonscan"
)

// bodyFormat is how a request body holds its events.
type bodyFormat int

const (
	formatJSON   bodyFormat = iota // one object, or an array of objects
	formatNDJSON                   // one object per line
)

// maxListedErrors caps the errors listed in one response; the rest are
// counted in errors_omitted. It bounds the response to a hostile body.
const maxListedErrors = 1000

// parseError refuses a whole request: 400 for invalid events, 413 when an
// event is larger than the limit. Errs lists every problem found (up to
// maxListedErrors), each with the index of its event.
type parseError struct {
	status  int
	reason  string // metric label: "invalid" or "event_too_large"
	summary string
	errs    []event.FieldError
	omitted int // errors found beyond maxListedErrors
	events  int // events in the request, when known
}

func bodyError(index int, format string, args ...any) *parseError {
	msg := fmt.Sprintf(format, args...)
	return &parseError{
		status:  http.StatusBadRequest,
		reason:  "invalid",
		summary: msg,
		errs:    []event.FieldError{{Index: index, Message: msg}},
	}
}

// parseEvents splits a request body into events and validates each with
// event.Decode, assigning event ids and received_at = now. It returns every
// event, in request order, or a parseError; never both.
func parseEvents(body []byte, format bodyFormat, maxEventBytes int64, now time.Time) ([]event.Event, *parseError) {
	var elems [][]byte
	var lines []linePos // NDJSON: where each element starts in the body
	switch format {
	case formatNDJSON:
		elems, lines = splitLines(body)
		if len(elems) == 0 {
			return nil, bodyError(0, "body is empty: send one event per line")
		}
	default:
		// The body is not validated as a whole up front: event.Decode
		// validates each element, and only when something is wrong does the
		// body get a second look to say where.
		b := bytes.TrimLeft(body, " \t\r\n")
		if len(b) == 0 {
			return nil, bodyError(0, "body is empty: send one event, or an array of events")
		}
		switch b[0] {
		case '{':
			elems = [][]byte{bytes.TrimRight(b, " \t\r\n")}
		case '[':
			var ok bool
			if elems, ok = splitArray(b); !ok {
				return nil, syntaxError(body)
			}
			if len(elems) == 0 {
				return nil, bodyError(0, "the array is empty: send at least one event")
			}
		default:
			if !json.Valid(body) {
				return nil, syntaxError(body)
			}
			return nil, bodyError(0, "body must be a JSON object (one event) or an array of objects, got %s", jsonscan.Kind(b))
		}
	}

	events := make([]event.Event, 0, len(elems))
	var errs []event.FieldError
	found, large := 0, 0
	for i, raw := range elems {
		if n := int64(len(raw)); n > maxEventBytes {
			large++
			found++
			errs = appendCapped(errs, event.FieldError{Index: i, Message: fmt.Sprintf("event is %d bytes, the limit is %d", n, maxEventBytes)})
			continue
		}
		ev, ferrs := event.Decode(raw, event.Options{Index: i, Now: now, AssignID: true})
		if ferrs != nil {
			if format == formatNDJSON && !json.Valid(raw) {
				ferrs = event.Errors{lineSyntaxError(raw, i, lines[i])}
			}
			found += len(ferrs)
			for _, fe := range ferrs {
				errs = appendCapped(errs, fe)
			}
			continue
		}
		if found == 0 {
			events = append(events, ev)
		}
	}
	if found == 0 {
		return events, nil
	}
	if format == formatJSON && !json.Valid(body) {
		return nil, syntaxError(body)
	}
	bad := map[int]bool{}
	for _, e := range errs {
		bad[e.Index] = true
	}
	pe := &parseError{status: http.StatusBadRequest, reason: "invalid", errs: errs, omitted: found - len(errs), events: len(elems)}
	if large > 0 {
		pe.status, pe.reason = http.StatusRequestEntityTooLarge, "event_too_large"
		pe.summary = fmt.Sprintf("%d of %d events are larger than %d bytes; nothing was accepted", large, len(elems), maxEventBytes)
	} else {
		pe.summary = fmt.Sprintf("%d of %d events are invalid; nothing was accepted", len(bad), len(elems))
		if pe.omitted > 0 {
			pe.summary = fmt.Sprintf("%d errors in %d events; nothing was accepted", found, len(elems))
		}
	}
	return nil, pe
}

func appendCapped(errs []event.FieldError, e event.FieldError) []event.FieldError {
	if len(errs) >= maxListedErrors {
		return errs
	}
	return append(errs, e)
}

// linePos is where an NDJSON event starts: 1-based line and column.
type linePos struct{ line, col int }

// splitLines returns the non-blank lines of an NDJSON body, trimmed, and
// where each starts.
func splitLines(body []byte) (elems [][]byte, pos []linePos) {
	for n := 1; len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		trimmed := bytes.TrimLeft(line, " \t\r")
		if trimmed = bytes.TrimRight(trimmed, " \t\r"); len(trimmed) > 0 {
			elems = append(elems, trimmed)
			pos = append(pos, linePos{line: n, col: 1 + len(line) - len(bytes.TrimLeft(line, " \t\r"))})
		}
	}
	return elems, pos
}

// splitArray returns the elements of the JSON array that b starts with,
// each trimmed of white space. ok reports whether the array's own structure
// is sound: elements separated by single commas, the array closed, nothing
// but white space after it. The elements themselves are not validated here
// (event.Decode does that). On a broken body, elems are the elements
// completed before the break, which is how syntaxError finds the index of
// the element that broke.
func splitArray(b []byte) (elems [][]byte, ok bool) {
	i := jsonscan.SkipSpace(b, 1) // b[0] is '['
	if i < len(b) && b[i] == ']' {
		return nil, jsonscan.SkipSpace(b, i+1) == len(b)
	}
	for {
		i = jsonscan.SkipSpace(b, i)
		start, depth := i, 0
		if i >= len(b) || b[i] == ',' || b[i] == ']' || b[i] == '}' {
			return elems, false // missing element
		}
	scan:
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = jsonscan.SkipValue(b, i) - 1 // at the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					break scan
				}
				depth--
			case ',':
				if depth == 0 {
					break scan
				}
			}
		}
		if i >= len(b) || b[i] == '}' {
			return elems, false
		}
		elems = append(elems, bytes.TrimRight(b[start:i], " \t\r\n"))
		if b[i] == ']' {
			return elems, jsonscan.SkipSpace(b, i+1) == len(b)
		}
		i++ // past the comma
	}
}

// syntaxError describes malformed JSON by its line and column in the body,
// and, for an array, by the index of the element that broke.
func syntaxError(body []byte) *parseError {
	err := json.Unmarshal(body, new(json.RawMessage))
	at, ok := jsonscan.SyntaxOffset(err)
	if !ok {
		return bodyError(0, "malformed JSON") // not reached: callers know the body is malformed
	}
	// At the end of the input there is no bad byte.
	if err.Error() == "unexpected end of JSON input" {
		at = len(body)
	}
	line, col := jsonscan.Position(body, at)
	index := 0
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		lead := len(body) - len(trimmed)
		if at > lead {
			elems, _ := splitArray(body[lead:at])
			index = len(elems)
		}
	}
	msg := fmt.Sprintf("malformed JSON at line %d, column %d: %s", line, col, err.Error())
	if strings.Contains(err.Error(), "after top-level value") {
		msg += " (send several events as a JSON array, or one per line with Content-Type: application/x-ndjson)"
	}
	return bodyError(index, "%s", msg)
}

// lineSyntaxError describes a malformed NDJSON line by its place in the body.
func lineSyntaxError(raw []byte, index int, at linePos) event.FieldError {
	err := json.Unmarshal(raw, new(json.RawMessage))
	col := at.col
	if off, ok := jsonscan.SyntaxOffset(err); ok {
		col += off
	}
	msg := "not valid JSON"
	if err != nil {
		msg = err.Error()
	}
	return event.FieldError{Index: index, Message: fmt.Sprintf("malformed JSON at line %d, column %d: %s", at.line, col, msg)}
}
