package lake

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/jsonscan"
	"github.com/acme/pipeline/internal/record"
)

// Record is one Kafka record as consumed: what bronze keeps.
type Record = record.Record

// Header is one Kafka record header.
type Header = record.Header

// bronzeLine is the JSON form of one bronze line. Exactly one of Value and
// ValueB64 is set: Value holds the record value verbatim when it is a JSON
// text on one line (the usual case, readable with jq), ValueB64 holds any
// other value (not JSON, not UTF-8, or spanning lines) in base64. Key and
// header values follow the same rule with a JSON string.
type bronzeLine struct {
	Offset    int64           `json:"offset"`
	Partition int32           `json:"partition"`
	TS        string          `json:"ts"`
	Key       *string         `json:"key,omitempty"`
	KeyB64    []byte          `json:"key_b64,omitempty"`
	Headers   []bronzeHeader  `json:"headers,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	ValueB64  []byte          `json:"value_b64,omitempty"`
}

type bronzeHeader struct {
	K   string  `json:"k"`
	V   *string `json:"v,omitempty"`
	VB6 []byte  `json:"v_b64,omitempty"`
}

// tsLayout is RFC 3339 in UTC with milliseconds (Kafka's resolution).
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// EncodeBronze encodes records as bronze NDJSON, one line per record:
//
//	{"offset":1000,"partition":3,"ts":"2026-11-24T14:05:09.123Z","key":"u-42","value":{...}}
//
// The value is kept byte for byte (see DecodeBronze).
func EncodeBronze(records []Record) []byte {
	// The line's size, headers included (the API's trace context and
	// received_at): an estimate short of it grows the buffer by copying it
	// whole, which cost more than the encoding (tests/benchworkers -pprof).
	n := 0
	for i := range records {
		r := &records[i]
		n += len(r.Value) + len(r.Key) + 96
		for _, h := range r.Headers {
			n += len(h.Key) + len(h.Value) + 16
		}
	}
	b := make([]byte, 0, n)
	for i := range records {
		b = appendBronzeFields(b, &records[i])
		b = append(b, "}\n"...)
	}
	return b
}

// appendBronzeFields appends the line of r without its closing brace.
func appendBronzeFields(b []byte, r *Record) []byte {
	b = append(b, `{"offset":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"ts":"`...)
	b = r.Time.UTC().AppendFormat(b, tsLayout)
	b = append(b, '"')
	if r.Key != nil {
		if utf8.Valid(r.Key) {
			b = append(b, `,"key":`...)
			b = event.AppendJSONString(b, string(r.Key))
		} else {
			b = append(b, `,"key_b64":"`...)
			b = base64.StdEncoding.AppendEncode(b, r.Key)
			b = append(b, '"')
		}
	}
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":[`...)
		for i, h := range r.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"k":`...)
			b = event.AppendJSONString(b, h.Key)
			if utf8.Valid(h.Value) {
				b = append(b, `,"v":`...)
				b = event.AppendJSONString(b, string(h.Value))
			} else {
				b = append(b, `,"v_b64":"`...)
				b = base64.StdEncoding.AppendEncode(b, h.Value)
				b = append(b, '"')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if verbatim(r.Value) {
		b = append(b, `,"value":`...)
		b = append(b, r.Value...)
	} else {
		b = append(b, `,"value_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Value)
		b = append(b, '"')
	}
	return b
}

// verbatim reports whether v can be embedded in a line as it is and read back
// byte for byte: valid UTF-8 JSON, no line breaks, no surrounding space.
func verbatim(v []byte) bool {
	if len(v) == 0 || bytes.IndexByte(v, '\n') >= 0 || bytes.IndexByte(v, '\r') >= 0 {
		return false
	}
	if isSpace(v[0]) || isSpace(v[len(v)-1]) {
		return false
	}
	// jsonscan.Valid is json.Valid (fuzzed against it), 4.3 times
	// faster: it runs on every record of every flush.
	return utf8.Valid(v) && jsonscan.Valid(v)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// DecodeBronze decodes an object written by EncodeBronze. Every record comes
// back exactly as it was encoded (value, key and headers byte for byte,
// timestamp to the millisecond).
func DecodeBronze(data []byte) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<30)
	line := 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var l bronzeLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("bronze line %d: %w", line, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, l.TS)
		if err != nil {
			return nil, fmt.Errorf("bronze line %d (offset %d): ts: %w", line, l.Offset, err)
		}
		r := Record{Partition: l.Partition, Offset: l.Offset, Time: ts}
		switch {
		case l.Key != nil:
			r.Key = []byte(*l.Key)
		case l.KeyB64 != nil:
			r.Key = l.KeyB64
		}
		for _, h := range l.Headers {
			v := h.VB6
			if h.V != nil {
				v = []byte(*h.V)
			}
			r.Headers = append(r.Headers, Header{Key: h.K, Value: v})
		}
		if l.Value != nil {
			r.Value = bytes.Clone(l.Value)
		} else {
			r.Value = l.ValueB64
			if r.Value == nil {
				r.Value = []byte{}
			}
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bronze line %d: %w", line+1, err)
	}
	return out, nil
}

// Quarantined is one record that could not be cleaned, and why.
type Quarantined struct {
	Topic  string
	Record Record
	// Reason is a one-line summary, e.g. "occurred_at: is required".
	Reason string
	// Errors lists every problem found (field and message), when known.
	Errors []FieldProblem
}

// FieldProblem is one problem with a quarantined record.
type FieldProblem struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// EncodeQuarantine encodes quarantined records as NDJSON, one line each: the
// bronze line of the record plus "topic", "reason" and "errors".
func EncodeQuarantine(qs []Quarantined) []byte {
	var b []byte
	for i := range qs {
		q := &qs[i]
		b = appendBronzeFields(b, &q.Record)
		b = append(b, `,"topic":`...)
		b = event.AppendJSONString(b, q.Topic)
		b = append(b, `,"reason":`...)
		b = event.AppendJSONString(b, q.Reason)
		if len(q.Errors) > 0 {
			errs, _ := json.Marshal(q.Errors)
			b = append(b, `,"errors":`...)
			b = append(b, errs...)
		}
		b = append(b, "}\n"...)
	}
	return b
}

// DecodeQuarantine decodes an object written by EncodeQuarantine.
func DecodeQuarantine(data []byte) ([]Quarantined, error) {
	recs, err := DecodeBronze(data)
	if err != nil {
		return nil, err
	}
	out := make([]Quarantined, 0, len(recs))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<30)
	i := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l struct {
			Topic  string         `json:"topic"`
			Reason string         `json:"reason"`
			Errors []FieldProblem `json:"errors"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("quarantine line %d: %w", i+1, err)
		}
		out = append(out, Quarantined{Topic: l.Topic, Record: recs[i], Reason: l.Reason, Errors: l.Errors})
		i++
	}
	return out, nil
}
