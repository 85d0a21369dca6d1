package ingest

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentationName = "github.com/acme/pipeline/ingest"

// metrics are the API's instruments, recorded through the global OTel
// MeterProvider (Prometheus names in parentheses, as served by
// telemetry.MetricsHandler):
//
//   - pipeline.api.events.accepted (pipeline_api_events_accepted_total):
//     events acknowledged by Kafka and answered with 202.
//   - pipeline.api.events.refused{reason} (pipeline_api_events_refused_total):
//     events in refused requests, where the request was read far enough
//     to count them.
//   - pipeline.api.requests.refused{reason} (pipeline_api_requests_refused_total):
//     refused POST /v1/events requests. Reasons: unauthorized,
//     unsupported_media_type, body_too_large, event_too_large, invalid,
//     overloaded, kafka_unavailable, bad_request.
//   - pipeline.api.request.duration{http.route,http.response.status_code}
//     (pipeline_api_request_duration_seconds): request latency, every route.
//   - pipeline.api.batch.size (pipeline_api_batch_size): events per
//     accepted request.
//   - pipeline.api.produce.duration{outcome}
//     (pipeline_api_produce_duration_seconds): time Kafka took to
//     acknowledge a request's events, or to fail.
type metrics struct {
	accepted        metric.Int64Counter
	refusedEvents   metric.Int64Counter
	refusedRequests metric.Int64Counter
	duration        metric.Float64Histogram
	batchSize       metric.Int64Histogram
	produce         metric.Float64Histogram
}

func newMetrics() (*metrics, error) {
	m := otel.Meter(instrumentationName)
	var ms metrics
	var err error
	if ms.accepted, err = m.Int64Counter("pipeline.api.events.accepted",
		metric.WithDescription("Events acknowledged by Kafka and answered with 202."),
		metric.WithUnit("{event}")); err != nil {
		return nil, err
	}
	if ms.refusedEvents, err = m.Int64Counter("pipeline.api.events.refused",
		metric.WithDescription("Events in refused requests, by reason."),
		metric.WithUnit("{event}")); err != nil {
		return nil, err
	}
	if ms.refusedRequests, err = m.Int64Counter("pipeline.api.requests.refused",
		metric.WithDescription("Refused POST /v1/events requests, by reason."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if ms.duration, err = m.Float64Histogram("pipeline.api.request.duration",
		metric.WithDescription("HTTP request latency."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	if ms.batchSize, err = m.Int64Histogram("pipeline.api.batch.size",
		metric.WithDescription("Events per accepted request."),
		metric.WithUnit("{event}"),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)); err != nil {
		return nil, err
	}
	if ms.produce, err = m.Float64Histogram("pipeline.api.produce.duration",
		metric.WithDescription("Time Kafka took to acknowledge a request's events, or to fail."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	return &ms, nil
}

func (m *metrics) refuse(ctx context.Context, reason string, events int) {
	attrs := metric.WithAttributes(attribute.String("reason", reason))
	m.refusedRequests.Add(ctx, 1, attrs)
	if events > 0 {
		m.refusedEvents.Add(ctx, int64(events), attrs)
	}
}

func metricOutcome(result string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("outcome", result))
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument records the latency of every request to route.
func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	routeAttr := attribute.String("http.route", route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		m.duration.Record(r.Context(), time.Since(start).Seconds(), metric.WithAttributes(
			routeAttr, attribute.Int("http.response.status_code", sw.status)))
	})
}
