// Package telemetry sets up OpenTelemetry for the pipeline's processes: a global
// TracerProvider configured from the standard OTEL_* environment, a global
// MeterProvider whose metrics are served in the Prometheus text format by
// MetricsHandler, and the W3C trace-context and baggage propagators.
//
// Instrumented code uses only the OTel API (otel.Tracer, otel.Meter,
// otel.GetTextMapPropagator); instruments created before Setup start
// recording once Setup has run.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config configures Setup. Everything else comes from the standard OTEL_*
// environment variables:
//
//   - OTEL_TRACES_EXPORTER: otlp, console or none (default none). Several
//     may be given, comma-separated. With none, spans are still created, so
//     trace context is still propagated to Kafka records, but nothing is exported.
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
//     OTEL_EXPORTER_OTLP_HEADERS, ...: read by the OTLP exporter, which
//     speaks OTLP over HTTP (protobuf); OTEL_EXPORTER_OTLP_PROTOCOL may be
//     unset or http/protobuf.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: the sampler (default
//     parentbased_always_on).
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: resource attributes;
//     OTEL_SERVICE_NAME overrides Config.ServiceName.
//   - OTEL_PROPAGATORS: tracecontext, baggage or none (default
//     tracecontext,baggage).
//   - OTEL_SDK_DISABLED=true: no SDK; the API stays a no-op and /metrics
//     serves only the Go runtime and process metrics.
type Config struct {
	// ServiceName is the service.name resource attribute, such as
	// "pipeline-api" or "pipeline-worker". Required.
	ServiceName string
}

var (
	mu      sync.Mutex
	metrics = handlerFor(newRegistry()) // of the latest Setup
)

func handlerFor(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsHandler serves the metrics of the global MeterProvider set by the
// latest Setup (and Go runtime and process metrics) in the Prometheus text
// format. It may be built before Setup runs.
func MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := metrics
		mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// Setup installs the global TracerProvider, MeterProvider and propagator.
// The returned shutdown flushes and stops them; call it once, on the way
// out. Setup fails, naming the variable, when an OTEL_* variable it reads
// holds a value it does not support.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	if cfg.ServiceName == "" {
		return nil, errors.New("telemetry: ServiceName is required")
	}
	prop, err := propagatorFromEnv()
	if err != nil {
		return nil, err
	}
	otel.SetTextMapPropagator(prop)

	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return func(context.Context) error { return nil }, nil
	}
	if err := checkSamplerEnv(); err != nil {
		return nil, err
	}

	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", cfg.ServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	exporters, err := spanExportersFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, e := range exporters {
		topts = append(topts, sdktrace.WithBatcher(e))
	}
	tp := sdktrace.NewTracerProvider(topts...) // sampler from OTEL_TRACES_SAMPLER(_ARG)

	reg := newRegistry()
	promExp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExp))

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	mu.Lock()
	metrics = handlerFor(reg)
	mu.Unlock()

	return func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
	}, nil
}

func envList(name string) []string {
	var out []string
	for _, v := range strings.Split(os.Getenv(name), ",") {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func spanExportersFromEnv(ctx context.Context) ([]sdktrace.SpanExporter, error) {
	var out []sdktrace.SpanExporter
	for _, name := range envList("OTEL_TRACES_EXPORTER") {
		switch name {
		case "none":
		case "otlp":
			for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
				if p := strings.TrimSpace(os.Getenv(v)); p != "" && p != "http/protobuf" {
					return nil, fmt.Errorf("telemetry: %s=%q is not supported (use http/protobuf)", v, p)
				}
			}
			e, err := otlptracehttp.New(ctx)
			if err != nil {
				return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
			}
			out = append(out, e)
		case "console":
			e, err := stdouttrace.New()
			if err != nil {
				return nil, fmt.Errorf("telemetry: console trace exporter: %w", err)
			}
			out = append(out, e)
		default:
			return nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q is not supported (use otlp, console or none)", name)
		}
	}
	return out, nil
}

func propagatorFromEnv() (propagation.TextMapPropagator, error) {
	names := envList("OTEL_PROPAGATORS")
	if len(names) == 0 {
		names = []string{"tracecontext", "baggage"}
	}
	var props []propagation.TextMapPropagator
	for _, n := range names {
		switch n {
		case "tracecontext":
			props = append(props, propagation.TraceContext{})
		case "baggage":
			props = append(props, propagation.Baggage{})
		case "none":
		default:
			return nil, fmt.Errorf("telemetry: OTEL_PROPAGATORS=%q is not supported (use tracecontext, baggage or none)", n)
		}
	}
	return propagation.NewCompositeTextMapPropagator(props...), nil
}

// checkSamplerEnv refuses sampler settings that the SDK would otherwise
// replace, with only a logged warning, by its default.
func checkSamplerEnv() error {
	s := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	switch s {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return nil // the SDK's default ratio, 1.0
		}
		if r, err := strconv.ParseFloat(arg, 64); err != nil || r < 0 || r > 1 {
			return fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER_ARG=%q must be a ratio between 0 and 1", arg)
		}
		return nil
	default:
		return fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER=%q is not supported (use always_on, always_off, traceidratio or their parentbased_ forms)", s)
	}
}

// HandleProfiles serves Go's profiles (CPU, heap, goroutines, execution
// trace) under /debug/pprof/ on mux: what `--pprof` turns on for the
// worker's metrics listener and the API's operators' listener, both
// private. They show what a process spends its CPU on under real load.
func HandleProfiles(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
