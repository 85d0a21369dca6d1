package activities

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/pipeline/lake"
)

// Tracing of the stream. Each flush of a partition is one span,
// stream.flush, child of the activity's span (Temporal's tracing
// interceptor puts it in the activity's context) and linked to the producer
// spans of its records (the W3C traceparent header the API writes into every
// Kafka record): from the API's trace, the link leads to the flush that took
// the event to bronze, silver and gold. Silver is a child span of the flush
// (stream.silver); gold, one load for every partition of the flush, is a
// child of the activity span linked to the partitions' flush spans
// (stream.gold). No span per record.

// TracerName is the instrumentation scope of the stream's spans.
const TracerName = "github.com/acme/pipeline/activities"

// MaxFlushLinks bounds the producer links of one stream.flush span (the
// SDK's default link limit); the distinct producer spans beyond it are
// counted in pipeline.links.dropped.
const MaxFlushLinks = 128

var tracer = otel.Tracer(TracerName) // delegates to the provider telemetry.Setup installs

// traceContext reads only the W3C traceparent and tracestate headers,
// whatever the global propagator: the API always writes them.
var traceContext = propagation.TraceContext{}

// recordCarrier reads one Kafka record's headers for the propagator.
type recordCarrier []lake.Header

func (c recordCarrier) Get(key string) string {
	for _, h := range c {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (recordCarrier) Set(string, string) {}

func (c recordCarrier) Keys() []string {
	keys := make([]string, len(c))
	for i, h := range c {
		keys[i] = h.Key
	}
	return keys
}

// producerLinks returns links to the distinct producer span contexts found
// in the records' traceparent headers, at most limit, and how many distinct
// ones did not fit. Records of one API request share one header, so the
// work is one map lookup per record and one parse per distinct header.
func producerLinks(recs []lake.Record, limit int) (links []trace.Link, dropped int) {
	seen := map[string]struct{}{}
	for i := range recs {
		v := traceparent(recs[i].Headers)
		if v == nil {
			continue
		}
		if _, ok := seen[string(v)]; ok {
			continue
		}
		seen[string(v)] = struct{}{}
		sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), recordCarrier(recs[i].Headers)))
		if !sc.IsValid() {
			continue
		}
		if len(links) >= limit {
			dropped++
			continue
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	return links, dropped
}

func traceparent(hs []lake.Header) []byte {
	for _, h := range hs {
		if h.Key == "traceparent" {
			return h.Value
		}
	}
	return nil
}

// startFlushSpan starts the stream.flush span of one partition's records,
// back-dated to start (the read, done before the records were known).
func startFlushSpan(ctx context.Context, topic string, p int32, recs []lake.Record, start trace.SpanStartOption) (context.Context, trace.Span) {
	links, dropped := producerLinks(recs, MaxFlushLinks)
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", topic),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(int(p))),
		attribute.Int("messaging.batch.message_count", len(recs)),
		attribute.Int64("pipeline.offset.first", recs[0].Offset),
		attribute.Int64("pipeline.offset.last", recs[len(recs)-1].Offset),
		attribute.Int("pipeline.links", len(links)),
	}
	if dropped > 0 {
		attrs = append(attrs, attribute.Int("pipeline.links.dropped", dropped))
	}
	return tracer.Start(ctx, "stream.flush", start, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attrs...))
}

// endSpan ends span, marking it failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
