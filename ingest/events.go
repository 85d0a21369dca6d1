package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

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
