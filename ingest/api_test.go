package ingest_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/ingest"
)

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// murmur2 is the Java client's partitioner hash (Utils.murmur2), written
// out here to check that records land where a Java producer would put them.
func murmur2(data []byte) uint32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	h := seed ^ uint32(len(data))
	n := len(data) / 4 * 4
	for i := 0; i < n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(data) % 4 {
	case 3:
		h ^= uint32(data[n+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[n+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[n])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

func TestMurmur2MatchesJava(t *testing.T) {
	// Values from librdkafka's rdmurmur2.c tests, which match the Java client.
	for key, want := range map[string]uint32{
		"kafka": 0xd067cf64, "giberish123456789": 0x8f552b0c, "1234": 0x9fc97b14,
		"234": 0xe7c009ca, "34": 0x873930da, "4": 0x5a4b5ca1, "": 0x106e08d9,
	} {
		if got := murmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %#x, want %#x", key, got, want)
		}
	}
}

var traceparentRe = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-9a-f]$`)

// TestAcceptedEventsLandOnTopic sends every body format and checks that each
// 202'd event id is read back from the topic, as acknowledged: value, key,
// partition and headers.
func TestAcceptedEventsLandOnTopic(t *testing.T) {
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, nil)

	type sent struct {
		ids         []string
		traceID     string // incoming trace id, if any
		ownIDs      map[int]string
		description string
	}
	var requests []sent

	// 1. One object, with an incoming W3C trace context.
	const incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := post(t, base, []byte(ev("page_view", `"user_id":"u-42","source":"web","properties":{"path":"/pricing?a=1&b=<2>"}`)),
		map[string]string{"traceparent": "00-" + incomingTrace + "-00f067aa0ba902b7-01"})
	if r.status != http.StatusAccepted || r.Accepted != 1 || len(r.EventIDs) != 1 {
		t.Fatalf("single object: %d %s", r.status, r.raw)
	}
	requests = append(requests, sent{ids: r.EventIDs, traceID: incomingTrace, description: "single"})

	// 2. An array of 50: even ones bring their own (upper-case) id, some have a user.
	var evs []string
	own := map[int]string{}
	for i := range 50 {
		extra := fmt.Sprintf(`"properties":{"i":%d}`, i)
		if i%2 == 0 {
			id := uuid.Must(uuid.NewV7()).String()
			own[i] = id
			extra += `,"event_id":"` + strings.ToUpper(id) + `"`
		}
		if i%3 == 0 {
			extra += fmt.Sprintf(`,"user_id":"user-%d"`, i%7)
		}
		evs = append(evs, ev("button_click", extra))
	}
	r = post(t, base, jsonArray(evs...), nil)
	if r.status != http.StatusAccepted || r.Accepted != 50 || len(r.EventIDs) != 50 {
		t.Fatalf("array: %d %s", r.status, r.raw)
	}
	for i, id := range own {
		if r.EventIDs[i] != id {
			t.Errorf("array: event %d: id %s returned, sent %s (ids must come back in request order, normalized)", i, r.EventIDs[i], id)
		}
	}
	requests = append(requests, sent{ids: r.EventIDs, ownIDs: own, description: "array"})

	// 3. NDJSON with CRLF and blank lines.
	var nd strings.Builder
	for i := range 30 {
		nd.WriteString(ev("search", fmt.Sprintf(`"user_id":"nd-%d"`, i)) + "\r\n")
		if i%10 == 0 {
			nd.WriteString("\n  \n")
		}
	}
	r = post(t, base, []byte(nd.String()), map[string]string{"Content-Type": "application/x-ndjson"})
	if r.status != http.StatusAccepted || r.Accepted != 30 {
		t.Fatalf("ndjson: %d %s", r.status, r.raw)
	}
	requests = append(requests, sent{ids: r.EventIDs, description: "ndjson"})

	// 4. Payment and audit events, gzip-compressed, with the second key.
	body := jsonArray(
		ev("payment.captured", `"user_id":"u-1","properties":{"amount":"12.50","currency":"EUR"}`),
		ev("payment.refunded", `"user_id":"u-1","properties":{"amount":3,"currency":"USD"}`),
		ev("audit.login", `"properties":{"actor":"admin@example.com","action":"login","outcome":"failure"}`),
	)
	r = post(t, base, gzipped(body), map[string]string{"Content-Encoding": "gzip", "Authorization": "Bearer another-secret"})
	if r.status != http.StatusAccepted || r.Accepted != 3 {
		t.Fatalf("gzip: %d %s", r.status, r.raw)
	}
	requests = append(requests, sent{ids: r.EventIDs, description: "gzip"})

	records := readTopic(t, brokers, testTopic)
	byID := map[string]record{}
	for _, rec := range records {
		var e event.Event
		e, errs := event.Decode(rec.value, event.Options{})
		if errs != nil {
			t.Fatalf("record %d/%d is not a valid event: %v\n%s", rec.partition, rec.offset, errs, rec.value)
		}
		if _, dup := byID[e.EventID]; dup {
			t.Errorf("event %s is on the topic twice", e.EventID)
		}
		byID[e.EventID] = rec
	}
	total := 0
	for _, req := range requests {
		traceIDs := map[string]bool{}
		for i, id := range req.ids {
			total++
			rec, ok := byID[id]
			if !ok {
				t.Errorf("%s: accepted event %d (%s) is not on the topic", req.description, i, id)
				continue
			}
			e, _ := event.Decode(rec.value, event.Options{})
			wantKey := e.UserID
			if wantKey == "" {
				wantKey = e.EventID
			}
			if rec.key != wantKey {
				t.Errorf("%s: event %s has key %q, want %q", req.description, id, rec.key, wantKey)
			}
			if want := int(murmur2([]byte(rec.key))&0x7fffffff) % partitions; rec.partition != want {
				t.Errorf("%s: key %q is on partition %d, a Java client would choose %d", req.description, rec.key, rec.partition, want)
			}
			if got := rec.headers[ingest.HeaderReceivedAt]; got == "" {
				t.Errorf("%s: no received-at header", req.description)
			} else if ts, err := time.Parse(time.RFC3339Nano, got); err != nil || !ts.Equal(e.ReceivedAt) {
				t.Errorf("%s: received-at header %q, value's received_at %s", req.description, got, e.ReceivedAt)
			}
			wantKeyName := "test"
			if req.description == "gzip" {
				wantKeyName = "other"
			}
			if got := rec.headers[ingest.HeaderAPIKeyName]; got != wantKeyName {
				t.Errorf("%s: api-key-name header %q, want %q", req.description, got, wantKeyName)
			}
			m := traceparentRe.FindStringSubmatch(rec.headers["traceparent"])
			if m == nil {
				t.Errorf("%s: traceparent header %q is not W3C trace context", req.description, rec.headers["traceparent"])
				continue
			}
			traceIDs[m[1]] = true
			if req.traceID != "" && (m[1] != req.traceID || m[2] == "00f067aa0ba902b7") {
				t.Errorf("%s: traceparent %s does not continue the request's trace %s in a new span", req.description, m[0], req.traceID)
			}
		}
		if len(traceIDs) > 1 {
			t.Errorf("%s: one request's records carry %d trace ids", req.description, len(traceIDs))
		}
	}
	if len(records) != total {
		t.Errorf("%d records on the topic, %d events accepted", len(records), total)
	}

	// The value is the event as sent, with event_id and received_at filled
	// in: properties pass through unescaped, decimals as sent.
	first := byID[requests[0].ids[0]]
	for _, want := range []string{`"path":"/pricing?a=1&b=<2>"`, `"user_id":"u-42"`, `"source":"web"`, `"occurred_at":"2026-11-24T14:05:09Z"`} {
		if !bytes.Contains(first.value, []byte(want)) {
			t.Errorf("record value %s does not contain %s", first.value, want)
		}
	}
	pay := byID[requests[3].ids[0]]
	if !bytes.Contains(pay.value, []byte(`"amount":"12.50"`)) {
		t.Errorf("payment record %s lost the exact amount", pay.value)
	}
}

// TestRefusals checks every bad-input class: its status, that the message
// names the problem, and that nothing reaches the topic.
func TestRefusals(t *testing.T) {
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, func(c *ingest.Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxEventBytes = 4 << 10
	})
	good := ev("page_view", "")
	big := ev("page_view", `"properties":{"blob":"`+strings.Repeat("x", 5000)+`"}`)
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)

	type wantErr struct {
		index int
		field string
		msg   string
	}
	cases := []struct {
		name    string
		body    []byte
		headers map[string]string
		status  int
		msg     string    // in the "error" summary
		errs    []wantErr // each must be listed (with this index, field and message part)
	}{
		{name: "no key", body: []byte(good), headers: map[string]string{"Authorization": ""}, status: 401, msg: "missing API key"},
		{name: "wrong key", body: []byte(good), headers: map[string]string{"Authorization": "Bearer nope"}, status: 401, msg: "invalid API key"},
		{name: "basic auth", body: []byte(good), headers: map[string]string{"Authorization": "Basic dGVzdDp4"}, status: 401, msg: "Bearer"},
		{name: "text/plain", body: []byte(good), headers: map[string]string{"Content-Type": "text/plain"}, status: 415, msg: "application/x-ndjson"},
		{name: "form (curl -d without -H)", body: []byte(good), headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 415, msg: "application/json"},
		{name: "latin-1", body: []byte(good), headers: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, status: 415, msg: "UTF-8"},
		{name: "brotli", body: []byte(good), headers: map[string]string{"Content-Encoding": "br"}, status: 415, msg: "gzip"},
		{name: "body too large", body: jsonArray(slices.Repeat([]string{good}, 2000)...), status: 413, msg: "limit of 65536 bytes"},
		{name: "body too large after gunzip", body: gzipped(jsonArray(slices.Repeat([]string{good}, 2000)...)), headers: map[string]string{"Content-Encoding": "gzip"}, status: 413, msg: "limit of 65536 bytes"},
		{name: "corrupt gzip", body: []byte("\x1f\x8b\x08\x00garbage"), headers: map[string]string{"Content-Encoding": "gzip"}, status: 400, msg: "gzip"},
		{name: "event too large", body: jsonArray(good, big, good), status: 413, msg: "larger than 4096", errs: []wantErr{{1, "", "limit is 4096"}}},
		{name: "empty body", body: nil, status: 400, msg: "body is empty"},
		{name: "empty array", body: []byte(" [ ] "), status: 400, msg: "array is empty"},
		{name: "scalar", body: []byte(`"hello"`), status: 400, msg: "must be a JSON object", errs: []wantErr{{0, "", "got a string"}}},
		{name: "malformed JSON", body: []byte(`{"type": "a",}`), status: 400, errs: []wantErr{{0, "", "malformed JSON at line 1, column 14"}}},
		{name: "malformed element", body: []byte("[\n" + good + ",\n" + good + ",\n{\"type\": }\n]"), status: 400, errs: []wantErr{{2, "", "line 4, column 10"}}},
		{name: "truncated array", body: []byte("[" + good + "," + good), status: 400, errs: []wantErr{{1, "", "unexpected end of JSON input"}}},
		{name: "two objects, no array", body: []byte(good + "\n" + good), status: 400, errs: []wantErr{{0, "", "application/x-ndjson"}}},
		{name: "array of numbers", body: []byte(`[1]`), status: 400, errs: []wantErr{{0, "", "must be a JSON object"}}},
		{name: "missing type", body: []byte(`{"occurred_at":"2026-11-24T14:05:09Z"}`), status: 400, errs: []wantErr{{0, "type", "is required"}}},
		{name: "bad type", body: []byte(ev("Page View", "")), status: 400, errs: []wantErr{{0, "type", "lowercase dotted words"}}},
		{name: "type too long", body: []byte(ev(strings.Repeat("a", 129), "")), status: 400, errs: []wantErr{{0, "type", "the limit is 128"}}},
		{name: "missing occurred_at", body: []byte(`{"type":"a"}`), status: 400, errs: []wantErr{{0, "occurred_at", "is required"}}},
		{name: "bad occurred_at", body: []byte(`{"type":"a","occurred_at":"yesterday"}`), status: 400, errs: []wantErr{{0, "occurred_at", "RFC 3339"}}},
		{name: "occurred_at in the future", body: []byte(`{"type":"a","occurred_at":"` + future + `"}`), status: 400, errs: []wantErr{{0, "occurred_at", "in the future"}}},
		{name: "occurred_at before 2000", body: []byte(`{"type":"a","occurred_at":"1999-12-31T23:59:59Z"}`), status: 400, errs: []wantErr{{0, "occurred_at", "before the year 2000"}}},
		{name: "bad event_id", body: []byte(ev("a", `"event_id":"123"`)), status: 400, errs: []wantErr{{0, "event_id", "must be a UUID"}}},
		{name: "nil event_id", body: []byte(ev("a", `"event_id":"00000000-0000-0000-0000-000000000000"`)), status: 400, errs: []wantErr{{0, "event_id", "nil UUID"}}},
		{name: "unknown field", body: []byte(ev("a", `"colour":"red"`)), status: 400, errs: []wantErr{{0, "colour", "unknown field"}}},
		{name: "user_id not a string", body: []byte(ev("a", `"user_id":42`)), status: 400, errs: []wantErr{{0, "user_id", "must be a string, got a number"}}},
		{name: "properties not an object", body: []byte(ev("a", `"properties":[1]`)), status: 400, errs: []wantErr{{0, "properties", "must be a JSON object"}}},
		{name: "payment without amount", body: []byte(ev("payment.captured", `"properties":{"currency":"EUR"}`)), status: 400, errs: []wantErr{{0, "properties.amount", "is required"}}},
		{name: "negative amount", body: []byte(ev("payment.captured", `"properties":{"amount":"-1","currency":"EUR"}`)), status: 400, errs: []wantErr{{0, "properties.amount", "must not be negative"}}},
		{name: "float amount", body: []byte(ev("payment.captured", `"properties":{"amount":1e3,"currency":"EUR"}`)), status: 400, errs: []wantErr{{0, "properties.amount", "decimal"}}},
		{name: "amount too precise", body: []byte(ev("payment.captured", `"properties":{"amount":"1.1234567","currency":"EUR"}`)), status: 400, errs: []wantErr{{0, "properties.amount", "6 fractional digits"}}},
		{name: "bad currency", body: []byte(ev("payment.captured", `"properties":{"amount":"1","currency":"usd"}`)), status: 400, errs: []wantErr{{0, "properties.currency", "ISO 4217"}}},
		{name: "audit without actor and action", body: []byte(ev("audit.login", `"properties":{}`)), status: 400, errs: []wantErr{{0, "properties.actor", "is required"}, {0, "properties.action", "is required"}}},
		{name: "NUL in properties", body: []byte(ev("a", `"properties":{"x":"a\u0000b"}`)), status: 400, errs: []wantErr{{0, "properties.x", "NUL"}}},
		{name: "invalid UTF-8", body: []byte(ev("a", "\"source\":\"\xff\"")), status: 400, errs: []wantErr{{0, "", "UTF-8"}}},
		{name: "one bad among good", body: jsonArray(good, good, good, `{"type":"a"}`, good), status: 400, msg: "1 of 5 events are invalid", errs: []wantErr{{3, "occurred_at", "is required"}}},
		{name: "every error listed", body: jsonArray(`{"occurred_at":"2026-11-24T14:05:09Z"}`, good, ev("payment.x", `"properties":{"amount":"1","currency":"XYZ"}`)), status: 400,
			msg: "2 of 3", errs: []wantErr{{0, "type", "is required"}, {2, "properties.currency", "ISO 4217"}}},
		{name: "ndjson malformed line", body: []byte(good + "\n\n" + good + "\n  {\"type\" \"a\"}\n"), headers: map[string]string{"Content-Type": "application/x-ndjson"}, status: 400,
			errs: []wantErr{{2, "", "malformed JSON at line 4, column 11"}}},
		{name: "ndjson empty", body: []byte("\n \n"), headers: map[string]string{"Content-Type": "application/x-ndjson"}, status: 400, msg: "body is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, base, tc.body, tc.headers)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if r.Error == "" || len(r.EventIDs) != 0 || r.Accepted != 0 {
				t.Errorf("refusal without an error summary, or with accepted ids: %s", r.raw)
			}
			if !strings.Contains(r.Error, tc.msg) {
				t.Errorf("error %q does not mention %q", r.Error, tc.msg)
			}
			for _, w := range tc.errs {
				found := false
				for _, e := range r.Errors {
					found = found || (e.Index == w.index && e.Field == w.field && strings.Contains(e.Message, w.msg))
				}
				if !found {
					t.Errorf("no error {index %d, field %q, message ~%q} in %s", w.index, w.field, w.msg, r.raw)
				}
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if n := topicSize(t, brokers); n != 0 {
		t.Errorf("refused requests put %d records on the topic", n)
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/v1/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/events: %d, want 405", res.StatusCode)
	}
}

// TestErrorListIsCapped: a hostile body cannot make the response list more
// than 1000 errors; the rest are counted.
func TestErrorListIsCapped(t *testing.T) {
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, nil)
	r := post(t, base, jsonArray(slices.Repeat([]string{`{"x":1}`}, 3000)...), nil)
	if r.status != 400 || len(r.Errors) != 1000 || r.ErrorsOmitted != 3*3000-1000 {
		t.Fatalf("status %d, %d errors listed, %d omitted; want 400, 1000, %d", r.status, len(r.Errors), r.ErrorsOmitted, 3*3000-1000)
	}
	var resp map[string]any
	if err := json.Unmarshal(r.raw, &resp); err != nil || resp["error"] == "" {
		t.Fatalf("body %s", r.raw[:200])
	}
}

// TestRecordTooLargeForKafka: an event within MaxEventBytes (1 MiB) whose
// record, with event_id, received_at and headers added, would pass Kafka's
// default max.message.bytes is refused with 413, not 503, and nothing is
// written.
func TestRecordTooLargeForKafka(t *testing.T) {
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, nil)
	pad := 1<<20 - 200
	body := []byte(ev("big", `"properties":{"blob":"`+strings.Repeat("x", pad)+`"}`))
	if len(body) > 1<<20 {
		t.Fatalf("test event is %d bytes, over MaxEventBytes", len(body))
	}
	r := post(t, base, body, nil)
	if r.status != http.StatusRequestEntityTooLarge || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "on the topic") {
		t.Fatalf("status %d: %.300s", r.status, r.raw)
	}
	if n := topicSize(t, brokers); n != 0 {
		t.Errorf("%d records written", n)
	}
	// A little smaller fits.
	body = []byte(ev("big", `"properties":{"blob":"`+strings.Repeat("x", pad-600)+`"}`))
	if r := post(t, base, body, nil); r.status != http.StatusAccepted {
		t.Fatalf("status %d: %.300s", r.status, r.raw)
	}
}
