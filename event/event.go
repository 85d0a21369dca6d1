// Package event holds the analytics event: its wire format on the topic and the
// validation rules shared by the event API (which refuses bad events) and the
// stream's silver stage (which quarantines them, because other producers write to
// the topic too). One set of rules in one place keeps the two from drifting apart.
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
)

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

// Event is one analytics event as it travels on the topic. Properties are kept as
// raw JSON so that decimals (payment amounts) pass through without a float round trip.
type Event struct {
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	ReceivedAt time.Time       `json:"received_at,omitzero"`
	Source     string          `json:"source,omitempty"`
	UserID     string          `json:"user_id,omitempty"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// FieldError names one problem with one event. Index is the event's position in
// its request (0 for a single event); Field is a JSON path such as
// "properties.amount".
type FieldError struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("event %d: %s", e.Index, e.Message)
	}
	return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Message)
}

// Errors is the list of problems with one event, in field order.
type Errors []FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Key is the Kafka record key: user_id keeps one user's events in order on one
// partition; events without a user spread by event_id.
func (e Event) Key() []byte {
	if e.UserID != "" {
		return []byte(e.UserID)
	}
	return []byte(e.EventID)
}

// Marshal encodes the event for the topic: the same JSON as json.Marshal
// (fields in order, received_at, source, user_id and properties omitted when
// empty, properties compacted), except that <, > and & are left as they are:
// escaping them would grow a record up to six times over. It is written out
// by hand because it runs once per event on the API's hot path.
func (e Event) Marshal() ([]byte, error) {
	props := e.Properties
	if len(props) > 0 {
		if !validJSON(props) {
			return nil, fmt.Errorf("event %s: properties are not valid JSON", e.EventID)
		}
		if bytes.ContainsAny(props, " \t\r\n") {
			var buf bytes.Buffer
			_ = json.Compact(&buf, props)
			props = buf.Bytes()
		}
	}
	for _, t := range []time.Time{e.OccurredAt, e.ReceivedAt} {
		if y := t.Year(); y < 0 || y > 9999 {
			return nil, fmt.Errorf("event %s: year %d is outside [0,9999]", e.EventID, y)
		}
	}
	// 256: the names, quotes, id and two timestamps, at their longest.
	b := make([]byte, 0, 256+len(e.Type)+len(e.Source)+len(e.UserID)+len(props))
	b = append(b, `{"event_id":`...)
	b = AppendJSONString(b, e.EventID)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, e.Type)
	b = append(b, `,"occurred_at":"`...)
	b = e.OccurredAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if !e.ReceivedAt.IsZero() {
		b = append(b, `,"received_at":"`...)
		b = e.ReceivedAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if e.Source != "" {
		b = append(b, `,"source":`...)
		b = AppendJSONString(b, e.Source)
	}
	if e.UserID != "" {
		b = append(b, `,"user_id":`...)
		b = AppendJSONString(b, e.UserID)
	}
	if len(props) > 0 {
		b = append(b, `,"properties":`...)
		b = append(b, props...)
	}
	return append(b, '}'), nil
}

// AppendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it with HTML escaping off: quote, backslash and control
// characters; invalid UTF-8 becomes U+FFFD; U+2028 and U+2029 are escaped.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// IsPayment reports whether the event feeds finance reporting.
func (e Event) IsPayment() bool { return strings.HasPrefix(e.Type, "payment.") }

// IsAudit reports whether the event feeds audit log aggregation.
func (e Event) IsAudit() bool { return strings.HasPrefix(e.Type, "audit.") }

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
	if len(raw) == 0 || raw[0] != '{' || !validJSON(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		if err == nil || (len(raw) > 0 && raw[0] != '{') {
			add("", "event must be a JSON object")
		} else {
			add("", "malformed JSON: %s", describeJSONError(raw, err))
		}
		return ev, errs
	}
	fields := splitObject(raw) // values alias raw: copy what is kept
	unknown := 0
	for _, name := range fields.unknown() {
		if unknown++; unknown <= maxUnknownFieldErrors {
			add(displayName(name), "unknown field (allowed: event_id, type, occurred_at, source, user_id, properties)")
		}
	}
	if unknown > maxUnknownFieldErrors {
		add("", "%d more unknown fields", unknown-maxUnknownFieldErrors)
	}

	str := func(name string, required bool, max int) (string, bool) {
		v, ok := fields.get(name)
		if !ok || string(v) == "null" {
			if required {
				add(name, "is required")
			}
			return "", false
		}
		s, err := jsonString(v)
		if err != nil {
			add(name, "must be a string, got %s", jsonKind(v))
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
	if p, ok := fields.get("properties"); ok && string(p) != "null" {
		if p[0] != '{' {
			add("properties", "must be a JSON object, got %s", jsonKind(p))
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
	case strings.HasPrefix(ev.Type, "payment."):
		if _, err := decimalProp(props, "amount"); err != "" {
			add("properties.amount", "%s", err)
		}
		if c, err := stringProp(props, "currency"); err != "" {
			add("properties.currency", "%s", err)
		} else if !IsCurrency(c) {
			add("properties.currency", "must be an ISO 4217 code such as EUR or USD, got %q", truncate(c, 20))
		}
	case strings.HasPrefix(ev.Type, "audit."):
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

// Amount returns properties.amount of a payment event as an exact decimal string.
func (e Event) Amount() string { v, _ := decimalProp(e.props(), "amount"); return v }

// Prop returns a string property, or "" when it is absent or not a string.
func (e Event) Prop(name string) string { v, _ := stringProp(e.props(), name); return v }

func (e Event) props() map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(e.Properties, &m)
	return m
}

func stringProp(props map[string]json.RawMessage, name string) (string, string) {
	v, ok := props[name]
	if !ok || string(v) == "null" {
		return "", "is required"
	}
	s, err := jsonString(v)
	if err != nil {
		return "", "must be a string, got " + jsonKind(v)
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

// validJSON is json.Valid, several times faster: it runs on every event on
// the API's hot path. Like json.Valid it accepts any byte of 0x20 and above
// in strings (Decode checks UTF-8 itself) and nesting up to 10,000 deep.
func validJSON(b []byte) bool {
	p := jsonValidator{b: b}
	p.space()
	if !p.value(0) {
		return false
	}
	p.space()
	return p.i == len(b)
}

type jsonValidator struct {
	b []byte
	i int
}

func (p *jsonValidator) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonValidator) value(depth int) bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		if depth >= 10000 {
			return false
		}
		p.i++
		p.space()
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			return true
		}
		for {
			if p.i >= len(p.b) || p.b[p.i] != '"' || !p.str() {
				return false
			}
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return false
			}
			p.i++
			p.space()
			if !p.value(depth + 1) {
				return false
			}
			p.space()
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case ',':
				p.i++
				p.space()
			case '}':
				p.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		if depth >= 10000 {
			return false
		}
		p.i++
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return true
		}
		for {
			if !p.value(depth + 1) {
				return false
			}
			p.space()
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case ',':
				p.i++
				p.space()
			case ']':
				p.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
				p.i += len(lit)
				return true
			}
		}
		return false
	}
}

// str consumes a string; p.b[p.i] is its opening quote.
func (p *jsonValidator) str() bool {
	b := p.b
	for i := p.i + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			p.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			i++
			if i >= len(b) {
				return false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		}
	}
	return false
}

func (p *jsonValidator) number() bool {
	b, i := p.b, p.i
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	p.i = i
	return true
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

// member is one name and value of a JSON object. Both may alias the input.
type member struct{ name, value []byte }

// members are an object's members in input order.
type members []member

// get returns the value of the last member called name, the one that
// json.Unmarshal into a map would keep.
func (ms members) get(name string) ([]byte, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if string(ms[i].name) == name {
			return ms[i].value, true
		}
	}
	return nil, false
}

// unknown returns the distinct names that are not event fields, sorted.
func (ms members) unknown() []string {
	var names []string
	for _, m := range ms {
		if !knownField[string(m.name)] {
			names = append(names, string(m.name))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// splitObject returns the members of a JSON object without copying: names
// without escapes and all values are slices of raw. raw must be valid JSON,
// an object, with no white space around it.
func splitObject(raw []byte) members {
	ms := make(members, 0, 8)
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] == '"' {
		end := skipValue(raw, i)
		var name []byte
		if quoted := raw[i+1 : end-1]; bytes.IndexByte(quoted, '\\') < 0 && utf8.Valid(quoted) {
			name = quoted
		} else {
			s, _ := jsonString(raw[i:end])
			name = []byte(s)
		}
		i = skipSpace(raw, skipSpace(raw, end)+1) // past the colon
		end = skipValue(raw, i)
		ms = append(ms, member{name: name, value: raw[i:end:end]})
		if i = skipSpace(raw, end); i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return ms
}

// skipValue returns the end of the JSON value that starts at raw[i]; raw is
// valid JSON.
func skipValue(raw []byte, i int) int {
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
				i = skipValue(raw, i) - 1
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

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// jsonString decodes a JSON string. Strings without escapes, the common
// case, skip the decoder (which would return the same).
func jsonString(v []byte) (string, error) {
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

func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
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

// describeJSONError turns a decoding error into "line L, column C: ...".
func describeJSONError(raw []byte, err error) string {
	var se *json.SyntaxError
	var off int64 = -1
	msg := "not a JSON object"
	if err != nil {
		msg = err.Error()
		if asSyntax(err, &se) {
			off = se.Offset
		}
	}
	if off < 0 {
		return msg
	}
	line, col := 1, 1
	for i := int64(0); i < off-1 && i < int64(len(raw)); i++ {
		if raw[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %s", line, col, msg)
}

func asSyntax(err error, target **json.SyntaxError) bool {
	se, ok := err.(*json.SyntaxError)
	if ok {
		*target = se
	}
	return ok
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
