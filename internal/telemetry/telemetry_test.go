package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"

	"github.com/acme/pipeline/internal/telemetry"
)

func TestSetupRefusesBadEnvironment(t *testing.T) {
	cases := []struct{ env, value, want string }{
		{"OTEL_TRACES_EXPORTER", "jaeger", "OTEL_TRACES_EXPORTER"},
		{"OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER"},
		{"OTEL_TRACES_SAMPLER_ARG", "2", "OTEL_TRACES_SAMPLER_ARG"},
		{"OTEL_PROPAGATORS", "b3", "OTEL_PROPAGATORS"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL"},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			if tc.env == "OTEL_TRACES_SAMPLER_ARG" {
				t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
			}
			if tc.env == "OTEL_EXPORTER_OTLP_PROTOCOL" {
				t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			}
			_, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "test"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Setup with %s=%s: %v; want an error naming %s", tc.env, tc.value, err, tc.want)
			}
		})
	}
	if _, err := telemetry.Setup(context.Background(), telemetry.Config{}); err == nil {
		t.Error("Setup without a service name succeeded")
	}
}

func TestSetupTracesMetricsAndPropagation(t *testing.T) {
	for _, exporter := range []string{"", "none", "console", "otlp"} {
		t.Run("exporter="+exporter, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", exporter)
			// Nothing listens here; the OTLP exporter only sends at shutdown.
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "100")
			t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
			t.Setenv("OTEL_TRACES_SAMPLER_ARG", "1")
			shutdown, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "pipeline-test"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, span := otel.Tracer("test").Start(context.Background(), "op")
			if !span.SpanContext().IsValid() || !span.SpanContext().IsSampled() {
				t.Error("the global tracer provider does not make sampled spans")
			}
			carrier := propagation.MapCarrier{}
			otel.GetTextMapPropagator().Inject(ctx, carrier)
			if !strings.HasPrefix(carrier["traceparent"], "00-"+span.SpanContext().TraceID().String()) {
				t.Errorf("propagator wrote %v", carrier)
			}
			span.End()

			c, _ := otel.Meter("test").Int64Counter("pipeline.test.things", metric.WithUnit("{thing}"))
			c.Add(ctx, 3)
			h, _ := otel.Meter("test").Float64Histogram("pipeline.test.duration", metric.WithUnit("s"))
			h.Record(ctx, 0.2)
			rec := httptest.NewRecorder()
			telemetry.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			body := rec.Body.String()
			for _, want := range []string{"pipeline_test_things_total", "pipeline_test_duration_seconds_bucket", `service_name="pipeline-test"`, "go_goroutines"} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			if err := shutdown(context.Background()); err != nil && exporter != "otlp" {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}
