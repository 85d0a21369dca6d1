package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
)

// TestCompactCycleTrace produces records carrying the traceparent of two API
// requests, runs one CompactCycle through Temporal's tracing interceptor and
// checks that the stream.flush span is the activity span's child, links both
// producer spans once each, and carries the partition, offsets and stage
// results; and that stream.silver and stream.gold follow.
func TestCompactCycleTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	s := newStack(t, 2)
	// Two API requests: each one producer span, its traceparent shared by
	// the request's records (as ingest does).
	producers := make([]trace.SpanContext, 2)
	for i := range producers {
		_, span := tp.Tracer("test-api").Start(context.Background(), "send events", trace.WithSpanKind(trace.SpanKindProducer))
		producers[i] = span.SpanContext()
		span.End()
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	var msgs []kafka.Message
	for i := range 10 {
		sc := producers[i/5]
		tp := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
		at := hour.Add(time.Duration(i) * time.Minute)
		v, err := event.Event{EventID: uuid.Must(uuid.NewV7()).String(), Type: "page_view", OccurredAt: at,
			ReceivedAt: at.Add(time.Second), Source: "web", UserID: fmt.Sprintf("u-%d", i),
			Properties: json.RawMessage(`{"path":"/p"}`)}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Value: v, Headers: []kafka.Header{{Key: "traceparent", Value: []byte(tp)}}})
	}
	msgs = append(msgs, kafka.Message{Value: []byte(`not json`)}) // quarantined, no traceparent
	w := &kafka.Writer{Addr: kafka.TCP(s.brokers...), Topic: s.topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 1 })}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := s.suite.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{tracing}})
	env.RegisterActivity(s.acts)
	v, err := env.ExecuteActivity(s.acts.CompactCycle, CompactCycleInput{Topic: s.topic, Offsets: startOffsets(2),
		MaxRecords: 100, FlushWait: 100 * time.Millisecond, MaxFlushes: 1})
	if err != nil {
		t.Fatal(err)
	}
	var res CompactCycleResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Records != 11 || res.Quarantined != 1 || res.Inserted != 10 {
		t.Fatalf("cycle: %d records, %d quarantined, %d inserted; want 11, 1, 10", res.Records, res.Quarantined, res.Inserted)
	}

	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		byName[sp.Name()] = append(byName[sp.Name()], sp)
	}
	flushes := byName["stream.flush"]
	if len(flushes) != 1 { // partition 0 had no records: no span
		t.Fatalf("%d stream.flush spans, want 1 (spans: %v)", len(flushes), names(rec.Ended()))
	}
	fl := flushes[0]
	links := map[trace.TraceID]trace.SpanID{}
	for _, l := range fl.Links() {
		links[l.SpanContext.TraceID()] = l.SpanContext.SpanID()
	}
	if len(fl.Links()) != 2 {
		t.Errorf("stream.flush has %d links, want 2 (one per producer span)", len(fl.Links()))
	}
	for _, p := range producers {
		if links[p.TraceID()] != p.SpanID() {
			t.Errorf("stream.flush has no link to producer span %s/%s: %v", p.TraceID(), p.SpanID(), fl.Links())
		}
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range fl.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	for k, want := range map[attribute.Key]string{
		"messaging.system":                   "kafka",
		"messaging.destination.name":         s.topic,
		"messaging.destination.partition.id": "1",
		"pipeline.offset.first":              "0",
		"pipeline.offset.last":               "10",
		"pipeline.records":                   "11",
		"pipeline.quarantined":               "1",
		"pipeline.rows":                      "10",
	} {
		if got := attrs[k].String(); got != want {
			t.Errorf("stream.flush %s = %q, want %q", k, got, want)
		}
	}
	if key := attrs["pipeline.bronze.key"].AsString(); key == "" ||
		s.count("SELECT count(*) FROM pipeline.bronze_objects WHERE object_key = $1 AND partition = 1", key) != 1 {
		t.Errorf("stream.flush pipeline.bronze.key = %q, not the recorded bronze object of partition 1", key)
	}

	// The activity span (Temporal's interceptor) is the parent.
	var act sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.SpanContext().SpanID() == fl.Parent().SpanID() {
			act = sp
		}
	}
	if act == nil || act.Name() != "RunActivity:CompactCycle" {
		t.Errorf("stream.flush parent: %v, want the RunActivity:CompactCycle span (spans: %v)", act, names(rec.Ended()))
	}

	// The cycle's append to silver.events, after gold, is the activity's
	// child too.
	if sv := byName["stream.silver.append"]; len(sv) == 0 || sv[0].Parent().SpanID() != fl.Parent().SpanID() {
		t.Errorf("stream.silver.append spans %d, want children of the activity span", len(sv))
	}
	gold := byName["stream.gold"]
	if len(gold) != 1 || len(gold[0].Links()) != 1 || gold[0].Links()[0].SpanContext.SpanID() != fl.SpanContext().SpanID() ||
		gold[0].Parent().SpanID() != fl.Parent().SpanID() {
		t.Errorf("stream.gold: want one span, sibling of stream.flush, linked to it; got %d", len(gold))
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, sp := range spans {
		out = append(out, sp.Name())
	}
	return out
}

// TestProducerLinks checks the dedupe, the cap and the records without a
// (valid) traceparent.
func TestProducerLinks(t *testing.T) {
	var recs []lake.Record
	for i := range 200 {
		tp := fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)
		for range 3 { // three records per request
			recs = append(recs, lake.Record{Headers: []lake.Header{{Key: "received_at", Value: []byte("x")}, {Key: "traceparent", Value: []byte(tp)}}})
		}
	}
	recs = append(recs, lake.Record{}, lake.Record{Headers: []lake.Header{{Key: "traceparent", Value: []byte("00-bad-01")}}})
	links, dropped := producerLinks(recs, MaxFlushLinks)
	if len(links) != MaxFlushLinks || dropped != 200-MaxFlushLinks {
		t.Fatalf("%d links, %d dropped; want %d, %d", len(links), dropped, MaxFlushLinks, 200-MaxFlushLinks)
	}
	if got := links[1].SpanContext.TraceID().String(); got != fmt.Sprintf("%032x", 2) {
		t.Errorf("second link trace id %s", got)
	}
}
