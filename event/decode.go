package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/acme/pipeline/internal/jsonscan"
)

// The rules: Decode turns the JSON of one event into an Event, or into every
// problem it finds. The API refuses what they refuse; the stream quarantines
// it.

// Limits on single fields. They protect the warehouse from pathological values; the
// per-event byte limit is the API's concern (configurable there).
const (
	MaxTypeLen   = 128
	MaxSourceLen = 128
	MaxUserIDLen = 256
	// MaxFutureSkew is how far in the future occurred_at may lie relative to the
	// time the event was received: a larger gap is a broken client clock.
	MaxFutureSkew = 24 * time.Hour

	// maxUnknownFieldErrors caps the unknown-field errors listed for one
	// event; the rest are counted in one more error.
	maxUnknownFieldErrors = 10
)

var (
	typeRe     = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	decimalRe  = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,6})?$`)
	knownField = map[string]bool{
		"event_id": true, "type": true, "occurred_at": true, "received_at": true,
		"source": true, "user_id": true, "properties": true,
	}
)

// Options tune Decode.
type Options struct {
	// Index is copied into every FieldError (the event's position in its request).
	Index int
	// Now is the receive time: it sets received_at when AssignID is set, fills
	// a missing received_at of a record on the topic (the stream passes the
	// Kafka timestamp), and bounds occurred_at from above (Now +
	// MaxFutureSkew). Zero disables the bound.
	Now time.Time
	// AssignID gives an event without event_id a new UUIDv7 and sets
	// received_at to Now. The API sets it; the stream does not (a record on the
	// topic without an id is quarantined).
	AssignID bool
}

// Decode parses and validates one event from JSON. It returns every problem it
// finds, not just the first, so a client can fix a request in one round trip.
func Decode(raw []byte, opt Options) (Event, Errors) {
	var ev Event
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Index: opt.Index, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	raw = bytes.TrimSpace(raw)
	if !utf8.Valid(raw) {
		add("", "event is not valid UTF-8")
		return ev, errs
	}
	if len(raw) == 0 || raw[0] != '{' || !jsonscan.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		if err == nil || (len(raw) > 0 && raw[0] != '{') {
			add("", "event must be a JSON object")
		} else {
			add("", "malformed JSON: %s", describeJSONError(raw, err))
		}
		return ev, errs
	}
	fields := jsonscan.SplitObject(raw) // values alias raw: copy what is kept
	unknown := 0
	for _, name := range unknownFields(fields) {
		if unknown++; unknown <= maxUnknownFieldErrors {
			add(displayName(name), "unknown field (allowed: event_id, type, occurred_at, source, user_id, properties)")
		}
	}
	if unknown > maxUnknownFieldErrors {
		add("", "%d more unknown fields", unknown-maxUnknownFieldErrors)
	}

	str := func(name string, required bool, max int) (string, bool) {
		v, ok := fields.Get(name)
		if !ok || string(v) == "null" {
			if required {
				add(name, "is required")
			}
			return "", false
		}
		s, err := jsonscan.String(v)
		if err != nil {
			add(name, "must be a string, got %s", jsonscan.Kind(v))
			return "", false
		}
		if required && strings.TrimSpace(s) == "" {
			add(name, "must not be empty")
			return "", false
		}
		if max > 0 && utf8.RuneCountInString(s) > max {
			add(name, "is %d characters long, the limit is %d", utf8.RuneCountInString(s), max)
			return "", false
		}
		// PostgreSQL's text refuses what jsonb refuses: NUL, and unpaired
		// surrogates, which encoding/json would silently turn into U+FFFD.
		if bytes.IndexByte(v, '\\') >= 0 {
			if _, msg := scanString(v, 0); msg != "" {
				add(name, "%s", msg)
				return "", false
			}
		}
		return s, true
	}

	if id, ok := str("event_id", false, 0); ok {
		u, err := uuid.Parse(id)
		switch {
		case err != nil || len(id) != 36:
			add("event_id", "must be a UUID such as 0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55, got %q", truncate(id, 60))
		case u == uuid.Nil:
			// Downstream deduplicates on event_id: every event sent with the
			// nil UUID would collapse into one.
			add("event_id", "must not be the nil UUID; omit event_id to have one assigned")
		default:
			ev.EventID = u.String()
		}
	}
	if t, ok := str("type", true, MaxTypeLen); ok {
		if !validType(t) {
			add("type", "must be lowercase dotted words such as page_view or payment.captured, got %q", truncate(t, 60))
		} else {
			ev.Type = t
		}
	}
	if s, ok := str("occurred_at", true, 64); ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		switch {
		case err != nil:
			add("occurred_at", "must be an RFC 3339 timestamp such as 2026-11-24T14:05:09Z, got %q", truncate(s, 60))
		case t.Year() < 2000:
			add("occurred_at", "%s is before the year 2000", s)
		case !opt.Now.IsZero() && t.After(opt.Now.Add(MaxFutureSkew)):
			add("occurred_at", "%s is more than %s in the future", s, MaxFutureSkew)
		default:
			ev.OccurredAt = t.UTC()
		}
	}
	if s, ok := str("received_at", false, 64); ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			add("received_at", "must be an RFC 3339 timestamp, got %q", truncate(s, 60))
		} else {
			ev.ReceivedAt = t.UTC()
		}
	}
	if s, ok := str("source", false, MaxSourceLen); ok {
		ev.Source = s
	}
	if s, ok := str("user_id", false, MaxUserIDLen); ok {
		ev.UserID = s
	}
	// p is valid JSON without surrounding white space, and may alias raw.
	var props map[string]json.RawMessage
	if p, ok := fields.Get("properties"); ok && string(p) != "null" {
		if p[0] != '{' {
			add("properties", "must be a JSON object, got %s", jsonscan.Kind(p))
		} else if perrs, spaced := checkProperties(p); perrs != nil {
			for _, e := range perrs {
				e.Index = opt.Index
				errs = append(errs, e)
			}
		} else {
			if spaced {
				var buf bytes.Buffer
				if err := json.Compact(&buf, p); err == nil {
					ev.Properties = buf.Bytes()
				}
			} else {
				ev.Properties = bytes.Clone(p)
			}
			if ev.IsPayment() || ev.IsAudit() {
				_ = json.Unmarshal(p, &props)
			}
		}
	}
	switch {
	case ev.IsPayment():
		if _, err := decimalProp(props, "amount"); err != "" {
			add("properties.amount", "%s", err)
		}
		if c, err := stringProp(props, "currency"); err != "" {
			add("properties.currency", "%s", err)
		} else if !IsCurrency(c) {
			add("properties.currency", "must be an ISO 4217 code such as EUR or USD, got %q", truncate(c, 20))
		}
	case ev.IsAudit():
		if _, err := stringProp(props, "actor"); err != "" {
			add("properties.actor", "%s", err)
		}
		if _, err := stringProp(props, "action"); err != "" {
			add("properties.action", "%s", err)
		}
		if v, ok := props["outcome"]; ok && string(v) != "null" {
			if _, err := stringProp(props, "outcome"); err != "" {
				add("properties.outcome", "%s", err)
			}
		}
	}
	if len(errs) > 0 {
		return Event{}, errs
	}
	if opt.AssignID {
		if ev.EventID == "" {
			ev.EventID = uuid.Must(uuid.NewV7()).String()
		}
		ev.ReceivedAt = opt.Now.UTC()
	} else {
		if ev.EventID == "" {
			errs = append(errs, FieldError{Index: opt.Index, Field: "event_id", Message: "is required on the topic"})
		}
		// Other producers than the API may leave received_at out: the
		// record's Kafka timestamp (Now) stands in for it.
		if ev.ReceivedAt.IsZero() && !opt.Now.IsZero() {
			ev.ReceivedAt = opt.Now.UTC()
		}
		if ev.ReceivedAt.IsZero() {
			errs = append(errs, FieldError{Index: opt.Index, Field: "received_at", Message: "is required on the topic (the record has no timestamp to stand in for it)"})
		}
		if len(errs) > 0 {
			return Event{}, errs
		}
	}
	return ev, nil
}

// unknownFields returns the distinct names of ms that are not event fields,
// sorted.
func unknownFields(ms jsonscan.Members) []string {
	var names []string
	for _, m := range ms {
		if !knownField[string(m.Name)] {
			names = append(names, string(m.Name))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func stringProp(props map[string]json.RawMessage, name string) (string, string) {
	v, ok := props[name]
	if !ok || string(v) == "null" {
		return "", "is required"
	}
	s, err := jsonscan.String(v)
	if err != nil {
		return "", "must be a string, got " + jsonscan.Kind(v)
	}
	if strings.TrimSpace(s) == "" {
		return "", "must not be empty"
	}
	if strings.ContainsRune(s, 0) {
		return "", msgNUL
	}
	if utf8.RuneCountInString(s) > 256 {
		return "", "is longer than 256 characters"
	}
	return s, ""
}

// decimalProp accepts a JSON number or a string holding a plain decimal, so
// that clients can send "12.50" to avoid float rounding in their own JSON encoders.
func decimalProp(props map[string]json.RawMessage, name string) (string, string) {
	v, ok := props[name]
	if !ok || string(v) == "null" {
		return "", "is required"
	}
	s := string(v)
	if len(v) > 0 && v[0] == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			return "", "must be a decimal"
		}
	}
	if strings.HasPrefix(s, "-") {
		return "", fmt.Sprintf("must not be negative, got %s (send refunds as payment.refunded with a positive amount)", truncate(s, 40))
	}
	if !decimalRe.MatchString(s) {
		return "", fmt.Sprintf("must be a decimal with at most 12 integer and 6 fractional digits such as \"12.50\", got %s", truncate(string(v), 40))
	}
	return s, ""
}

// validType reports whether t matches typeRe, without the regexp engine
// (it runs once per event on the API's hot path).
func validType(t string) bool {
	word := false // inside a dotted word
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z':
			word = true
		case (c >= '0' && c <= '9') || c == '_':
			if !word {
				return false
			}
		case c == '.':
			if !word {
				return false
			}
			word = false
		default:
			return false
		}
	}
	return word
}

// describeJSONError turns a decoding error into "line L, column C: ...".
func describeJSONError(raw []byte, err error) string {
	if err == nil {
		return "not a JSON object"
	}
	at, ok := jsonscan.SyntaxOffset(err)
	if !ok {
		return err.Error()
	}
	line, col := jsonscan.Position(raw, at)
	return fmt.Sprintf("line %d, column %d: %s", line, col, err.Error())
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
