package main

// The tracing overhead section: the API with tracing off beside the API with
// tracing on at a 10% sample rate, exporting for real over OTLP/HTTP to a
// sink served in this process. Both modes run internal/telemetry.Setup, so
// they differ only in tracing (metrics are on in both); the modes alternate
// round by round, each round against a fresh broker and server.

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/acme/pipeline/tests/benchutil"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/acme/pipeline/internal/telemetry"
)

type traceMode struct {
	name string
	env  map[string]string // set before telemetry.Setup; the sink's endpoint is added for otlp
}

var traceModes = []traceMode{
	{"off", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_TRACES_SAMPLER": "always_off", "OTEL_TRACES_SAMPLER_ARG": ""}},
	{"on 10%", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}},
}

// traceSink stands in for an OTLP/HTTP collector: it answers POST /v1/traces
// with 200 and keeps the request bodies, which are decoded only after the
// round, off the measured path.
type traceSink struct {
	url string
	srv *http.Server

	mu     sync.Mutex
	posts  int
	bytes  int64
	bodies [][]byte
}

func startTraceSink() (*traceSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &traceSink{url: "http://" + ln.Addr().String() + "/v1/traces"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.posts++
		s.bytes += int64(len(b))
		s.bodies = append(s.bodies, b)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	})
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(ln)
	return s, nil
}

type sinkCount struct {
	posts                 int
	bytes                 int64
	serverSpans, allSpans int
}

// take returns what arrived since the last take and forgets it.
func (s *traceSink) take() (sinkCount, error) {
	s.mu.Lock()
	c := sinkCount{posts: s.posts, bytes: s.bytes}
	bodies := s.bodies
	s.posts, s.bytes, s.bodies = 0, 0, nil
	s.mu.Unlock()
	for _, b := range bodies {
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return c, fmt.Errorf("trace sink: %w", err)
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					c.allSpans++
					if sp.Kind == tracepb.Span_SPAN_KIND_SERVER {
						c.serverSpans++
					}
				}
			}
		}
	}
	return c, nil
}

// tracedScenario runs one API scenario with telemetry set up for mode m and
// shut down (flushing the exporter) afterwards.
func tracedScenario(m traceMode, sink *traceSink, batch, clients int, d time.Duration) (result, sinkCount, error) {
	env := map[string]string{
		"OTEL_SDK_DISABLED":                  "false",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.url,
	}
	for k, v := range m.env {
		env[k] = v
	}
	for k, v := range env {
		os.Setenv(k, v)
	}
	// The previous round's broker held every record in memory: collect it
	// now, so that its garbage does not fall on whichever mode comes next.
	runtime.GC()
	ctx := context.Background()
	shutdown, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "benchapi"})
	if err != nil {
		return result{}, sinkCount{}, err
	}
	res, err := scenario(true, batch, clients, d)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if serr := shutdown(sctx); err == nil && serr != nil {
		err = fmt.Errorf("telemetry shutdown: %w", serr)
	}
	if err != nil {
		return res, sinkCount{}, err
	}
	c, err := sink.take()
	return res, c, err
}

type modeResult struct {
	rounds []float64 // events/s per round
	all    result    // pooled, for latency percentiles
	sink   sinkCount // summed over rounds
}

// runTracing measures the tracing modes for each batch size, alternating
// them round by round, and prints a table. Speed is reported, not asserted.
func runTracing(batches []int, clients, rounds int, perRound time.Duration) error {
	sink, err := startTraceSink()
	if err != nil {
		return err
	}
	defer sink.srv.Close()

	fmt.Printf("\ntracing overhead: API only, telemetry.Setup in both modes (metrics on), %s per round, %d rounds per mode alternating %s; on = OTLP/HTTP to an in-process sink\n",
		perRound, rounds, modeNames())
	fmt.Println("  off:    OTEL_TRACES_EXPORTER=none OTEL_TRACES_SAMPLER=always_off")
	fmt.Println("  on 10%: OTEL_TRACES_EXPORTER=otlp OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1")
	fmt.Println()

	type row struct {
		batch int
		modes []modeResult
	}
	var rows []row
	for _, b := range batches {
		ms := make([]modeResult, len(traceModes))
		for range rounds {
			for i, m := range traceModes {
				r, c, err := tracedScenario(m, sink, b, clients, perRound)
				if err != nil {
					return fmt.Errorf("tracing %s, batch %d: %w", m.name, b, err)
				}
				ms[i].rounds = append(ms[i].rounds, r.rate())
				ms[i].all = ms[i].all.add(r)
				ms[i].sink.posts += c.posts
				ms[i].sink.bytes += c.bytes
				ms[i].sink.serverSpans += c.serverSpans
				ms[i].sink.allSpans += c.allSpans
			}
		}
		for i := range ms {
			slices.Sort(ms[i].all.lat)
		}
		rows = append(rows, row{b, ms})
	}

	fmt.Println("| batch | mode   | events/s per round        | median events/s | p50      | p99      | requests | spans exported | sampled | exported bytes | overhead | paired |")
	fmt.Println("|------:|:-------|:--------------------------|----------------:|---------:|---------:|---------:|---------------:|--------:|---------------:|---------:|-------:|")
	for _, r := range rows {
		off := benchutil.Median(r.modes[0].rounds)
		for i, m := range r.modes {
			per := ""
			for j, x := range m.rounds {
				if j > 0 {
					per += " "
				}
				per += fmt.Sprintf("%.0f", x)
			}
			over, paired := "", ""
			if i > 0 {
				over = fmt.Sprintf("%.1f%%", 100*(1-benchutil.Median(m.rounds)/off))
				var ratios []float64
				for j, x := range m.rounds {
					ratios = append(ratios, 1-x/r.modes[0].rounds[j])
				}
				paired = fmt.Sprintf("%.1f%%", 100*benchutil.Median(ratios))
			}
			sampled := 100 * float64(m.sink.serverSpans) / float64(max(1, m.all.sent))
			fmt.Printf("| %5d | %-6s | %-25s | %15.0f | %8s | %8s | %8d | %14d | %6.1f%% | %14d | %8s | %6s |\n",
				r.batch, traceModes[i].name, per, benchutil.Median(m.rounds), ms(m.all.pct(0.5)), ms(m.all.pct(0.99)),
				m.all.sent, m.sink.allSpans, sampled, m.sink.bytes, over, paired)
		}
	}
	fmt.Println("overhead = 1 - median(on)/median(off); paired = median over rounds of 1 - on/off (each on round against the off round just before it)")
	fmt.Println("sampled = exported server spans / requests answered (incl. warm-up)")
	for _, r := range rows {
		for i, m := range r.modes {
			if m.all.failed > 0 {
				fmt.Printf("batch %d, tracing %s: %d requests failed\n", r.batch, traceModes[i].name, m.all.failed)
			}
		}
	}
	return nil
}

func modeNames() string {
	s := ""
	for i, m := range traceModes {
		if i > 0 {
			s += ", "
		}
		s += m.name
	}
	return s
}
