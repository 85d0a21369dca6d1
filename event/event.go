// Package event holds the analytics event: its wire format on the topic and the
// validation rules shared by the event API (which refuses bad events) and the
// stream's silver stage (which quarantines them, because other producers write to
// the topic too). One set of rules in one place keeps the two from drifting apart.
package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/acme/pipeline/internal/jsonscan"
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
		if !jsonscan.Valid(props) {
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

// Amount returns properties.amount of a payment event as an exact decimal string.
func (e Event) Amount() string { v, _ := decimalProp(e.props(), "amount"); return v }

// Prop returns a string property, or "" when it is absent or not a string.
func (e Event) Prop(name string) string { v, _ := stringProp(e.props(), name); return v }

func (e Event) props() map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(e.Properties, &m)
	return m
}
