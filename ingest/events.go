package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/pipeline/event"
)

// Retry-After, in seconds, for the two kinds of 503.
const (
	retryAfterKafka = 5
	retryAfterBusy  = 1
)

// Header names on every record.
const (
	HeaderReceivedAt = "received-at"
	HeaderAPIKeyName = "api-key-name"
)

type acceptedResponse struct {
	Accepted int      `json:"accepted"`
	EventIDs []string `json:"event_ids"`
}

type errorResponse struct {
	Error         string             `json:"error"`
	Errors        []event.FieldError `json:"errors,omitempty"`
	ErrorsOmitted int                `json:"errors_omitted,omitempty"`
}

// outcome is what handleEvents answers, and what it records about it.
type outcome struct {
	status     int
	body       any
	reason     string // refusal reason (metric label); "" when accepted
	events     int    // events in the request, when known
	retryAfter int
	err        error // the cause of a 503, for the log and the span
}

func refuse(status int, reason, format string, args ...any) outcome {
	return outcome{status: status, reason: reason, body: errorResponse{Error: fmt.Sprintf(format, args...)}}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC()
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, "POST /v1/events", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", "/v1/events")))
	defer span.End()

	keyName, o := s.ingest(ctx, w, r, now)

	span.SetAttributes(attribute.Int("http.response.status_code", o.status), attribute.Int("pipeline.events", o.events))
	if o.reason == "" {
		s.m.accepted.Add(ctx, int64(o.events))
		s.m.batchSize.Record(ctx, int64(o.events))
		s.accepted.Add(int64(o.events))
		if s.cfg.OnAccepted != nil {
			s.cfg.OnAccepted(now, o.events)
		}
	} else {
		s.m.refuse(ctx, o.reason, o.events)
		s.refused.Add(1)
		span.SetAttributes(attribute.String("pipeline.refused_reason", o.reason))
		if o.status >= 500 {
			span.SetStatus(codes.Error, o.reason)
		}
	}
	switch {
	case o.err != nil && r.Context().Err() != nil:
		s.log.Debug("request abandoned by its client", "key", keyName, "events", o.events, "error", o.err)
	case o.err != nil && o.status == http.StatusInternalServerError:
		span.RecordError(o.err)
		s.log.Error("events refused: internal error", "key", keyName, "events", o.events, "error", o.err)
	case o.err != nil:
		span.RecordError(o.err)
		s.log.Warn("events refused: Kafka did not take them", "key", keyName, "events", o.events, "error", o.err)
	case o.reason != "":
		s.log.Debug("events refused", "key", keyName, "status", o.status, "reason", o.reason, "events", o.events)
	}

	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if o.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="pipeline"`)
	}
	if o.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(o.retryAfter))
	}
	// Not HTML-escaped: messages quote what the client sent, and stay
	// readable in a terminal (the body is never served as HTML).
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o.body); err != nil { // cannot happen with these types
		body.Reset()
		body.WriteString(`{"error":"internal error"}` + "\n")
	}
	w.WriteHeader(o.status)
	w.Write(body.Bytes())
}

// ingest does the work of POST /v1/events and says what to answer.
func (s *Server) ingest(ctx context.Context, w http.ResponseWriter, r *http.Request, now time.Time) (string, outcome) {
	keyName, o, ok := s.authenticate(r)
	if !ok {
		return "", o
	}
	format, o, ok := requestFormat(r)
	if !ok {
		return keyName, o
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return keyName, refuse(http.StatusRequestEntityTooLarge, "body_too_large",
			"request body is %d bytes, over the limit of %d bytes: send fewer events per request", r.ContentLength, s.cfg.MaxBodyBytes)
	}

	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		o := refuse(http.StatusServiceUnavailable, "overloaded",
			"the API is handling its limit of %d requests at once; retry after %d s", s.cfg.MaxInFlight, retryAfterBusy)
		o.retryAfter = retryAfterBusy
		return keyName, o
	}

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 4<<20 {
			bufPool.Put(buf)
		}
	}()
	if o, ok := s.readBody(w, r, buf); !ok {
		return keyName, o
	}

	events, perr := parseEvents(buf.Bytes(), format, s.cfg.MaxEventBytes, now)
	if perr != nil {
		return keyName, outcome{
			status: perr.status, reason: perr.reason, events: perr.events,
			body: errorResponse{Error: perr.summary, Errors: perr.errs, ErrorsOmitted: perr.omitted},
		}
	}
	return keyName, s.produce(ctx, events, keyName, now)
}

// authenticate finds the key whose secret is the bearer token. It compares
// SHA-256 digests in constant time against every key, so neither the
// secrets' contents nor their lengths leak through timing.
func (s *Server) authenticate(r *http.Request) (string, outcome, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "missing API key: send the header Authorization: Bearer <key>"), false
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "the Authorization header must be Bearer <key>"), false
	}
	sum := sha256.Sum256([]byte(token))
	name := ""
	for _, k := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 {
			name = k.name
		}
	}
	if name == "" {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "invalid API key"), false
	}
	return name, outcome{}, true
}

// requestFormat reads Content-Type and Content-Encoding. No Content-Type
// means JSON.
func requestFormat(r *http.Request) (bodyFormat, outcome, bool) {
	unsupported := func(format string, args ...any) (bodyFormat, outcome, bool) {
		return 0, refuse(http.StatusUnsupportedMediaType, "unsupported_media_type", format, args...), false
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "gzip":
	default:
		return unsupported("Content-Encoding %q is not supported: send gzip or no encoding", truncate(enc, 40))
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return formatJSON, outcome{}, true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return unsupported("Content-Type %q cannot be parsed: send application/json or application/x-ndjson", truncate(ct, 80))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return unsupported("charset %q is not supported: send UTF-8", truncate(cs, 40))
	}
	switch mt {
	case "application/json":
		return formatJSON, outcome{}, true
	case "application/x-ndjson", "application/ndjson":
		return formatNDJSON, outcome{}, true
	default:
		return unsupported("Content-Type %s is not supported: send application/json (one event or an array of events) or application/x-ndjson (one event per line)", truncate(mt, 80))
	}
}

// readBody reads the (possibly gzip-compressed) body into buf, refusing
// bodies over MaxBodyBytes before or after decompression.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (outcome, bool) {
	limit := s.cfg.MaxBodyBytes
	tooLarge := func() (outcome, bool) {
		return refuse(http.StatusRequestEntityTooLarge, "body_too_large",
			"request body is larger than the limit of %d bytes: send fewer events per request", limit), false
	}
	var rd io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip") {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooLarge()
			}
			return refuse(http.StatusBadRequest, "bad_request", "body is not valid gzip: %v", err), false
		}
		defer zr.Close()
		rd = io.LimitReader(zr, limit+1)
	}
	if r.ContentLength > 0 && r.ContentLength <= limit {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(rd); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return tooLarge()
		case strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip"):
			return refuse(http.StatusBadRequest, "bad_request", "body is not valid gzip: %v", err), false
		default:
			return refuse(http.StatusBadRequest, "bad_request", "reading the request body: %v", err), false
		}
	}
	if int64(buf.Len()) > limit {
		return tooLarge()
	}
	return outcome{}, true
}

// produce writes the events to Kafka and waits for every acknowledgement.
func (s *Server) produce(ctx context.Context, events []event.Event, keyName string, now time.Time) outcome {
	n := len(events)
	ctx, span := s.tracer.Start(ctx, "send "+s.cfg.Topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", s.cfg.Topic),
			attribute.Int("messaging.batch.message_count", n)))
	defer span.End()

	// One set of headers, shared read-only by every record of the request.
	headers := make([]kafka.Header, 0, 4)
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier{&headers})
	headers = append(headers,
		kafka.Header{Key: HeaderReceivedAt, Value: []byte(now.Format(time.RFC3339Nano))},
		kafka.Header{Key: HeaderAPIKeyName, Value: []byte(keyName)})
	headerBytes := 0
	for _, h := range headers {
		headerBytes += len(h.Key) + len(h.Value) + 10
	}

	msgs := make([]kafka.Message, n)
	ids := make([]string, n)
	var tooLarge []event.FieldError
	for i, ev := range events {
		value, err := ev.Marshal()
		if err != nil {
			return outcome{status: http.StatusInternalServerError, reason: "internal", events: n, err: err,
				body: errorResponse{Error: "internal error encoding an event"}}
		}
		key := ev.Key()
		// The same upper bound on a record's size as the writer's check.
		if size := int64(len(key)+len(value)+headerBytes) + 64; size > s.maxRecordBytes {
			tooLarge = append(tooLarge, event.FieldError{Index: i, Message: fmt.Sprintf(
				"event is %d bytes on the topic (with event_id, received_at and headers), the limit for one record is %d", size, s.maxRecordBytes)})
			continue
		}
		msgs[i] = kafka.Message{Key: key, Value: value, Headers: headers, Time: now}
		ids[i] = ev.EventID
	}
	if len(tooLarge) > 0 {
		return outcome{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", events: n, body: errorResponse{
			Error:  fmt.Sprintf("%d of %d events are too large for a Kafka record; nothing was accepted", len(tooLarge), n),
			Errors: tooLarge[:min(len(tooLarge), maxListedErrors)], ErrorsOmitted: max(len(tooLarge)-maxListedErrors, 0),
		}}
	}

	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProduceTimeout)
	defer cancel()
	start := time.Now()
	err := s.writer.WriteMessages(pctx, msgs...)
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.m.produce.Record(ctx, time.Since(start).Seconds(), metricOutcome(result))
	if err == nil {
		return outcome{status: http.StatusAccepted, events: n, body: acceptedResponse{Accepted: n, EventIDs: ids}}
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, "produce failed")
	var mtl kafka.MessageTooLargeError
	if errors.As(err, &mtl) || errors.Is(err, kafka.MessageSizeTooLarge) {
		return outcome{status: http.StatusRequestEntityTooLarge, reason: "event_too_large", events: n, err: err,
			body: errorResponse{Error: "Kafka refused a record as too large; nothing was accepted: send smaller events"}}
	}
	return outcome{status: http.StatusServiceUnavailable, reason: "kafka_unavailable", events: n, err: summarize(err),
		retryAfter: retryAfterKafka,
		body: errorResponse{Error: fmt.Sprintf(
			"Kafka could not take the events (no acknowledgement of every event within %s); nothing was accepted: retry after %d s, "+
				"sending the same event_id values (some of the events may have been written)", s.cfg.ProduceTimeout, retryAfterKafka)}}
}

// summarize shortens kafka.WriteErrors (one error per message) to the
// distinct errors and how often each occurred.
func summarize(err error) error {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) {
		return err
	}
	counts := map[string]int{}
	var order []string
	for _, e := range werrs {
		if e == nil {
			continue
		}
		if counts[e.Error()] == 0 {
			order = append(order, e.Error())
		}
		counts[e.Error()]++
	}
	parts := make([]string, len(order))
	for i, msg := range order {
		parts[i] = fmt.Sprintf("%d× %s", counts[msg], msg)
	}
	return fmt.Errorf("%d of %d records failed: %s", werrs.Count(), len(werrs), strings.Join(parts, "; "))
}

// headerCarrier lets the OTel propagator write into Kafka record headers.
type headerCarrier struct{ h *[]kafka.Header }

func (c headerCarrier) Get(key string) string {
	for _, h := range *c.h {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i := range *c.h {
		if (*c.h)[i].Key == key {
			(*c.h)[i].Value = []byte(value)
			return
		}
	}
	*c.h = append(*c.h, kafka.Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, h := range *c.h {
		keys[i] = h.Key
	}
	return keys
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
