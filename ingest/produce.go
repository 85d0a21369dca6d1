package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/pipeline/event"
)

// Writing the accepted events to Kafka: one record per event, the
// request's trace context and receive time in every record's headers.

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
