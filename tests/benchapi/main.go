// Command benchapi measures the event API: events per second and request
// latency (p50, p99) for batches of 1, 100 and 1,000 events sent by several
// concurrent clients, beside a baseline measured in the same run: the same
// events written straight to the same kind of broker by a kafka-go Writer
// with the API's settings (acks=all, murmur2 keys, 1 ms batch timeout).
//
// Everything runs in this process on loopback: an in-process kfake broker
// (topic "events", 12 partitions), started fresh for every scenario, and the
// API served on 127.0.0.1. After each API scenario the topic's record count
// is checked against the events answered 202.
//
// Baseline and API alternate in short rounds (default 3 per batch size) so
// that load from other processes on a shared machine falls on both alike.
//
// Then the tracing overhead (tracing.go): the API with tracing off
// (always_off) and on at a 10% sample rate (parentbased_traceidratio 0.1)
// exporting over OTLP/HTTP to an in-process sink, alternating round by round,
// with the median events/s per mode and the overhead 1 - on/off. Speed is
// reported, never asserted.
//
//	go run ./tests/benchapi [-clients 8] [-duration 4.5s] [-rounds 3] [-batches 1,100,1000]
//	    [-trace-rounds 5] [-trace-duration 1.5s] [-trace-batches 1,100,1000] [-only api|baseline|tracing]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	topic      = "events"
	partitions = 12
	apiKey     = "bench-secret"
)

type result struct {
	events   int64
	requests int
	failed   int
	sent     int // requests answered, incl. warm-up
	elapsed  time.Duration
	lat      []time.Duration
}

func (r result) add(o result) result {
	r.events += o.events
	r.requests += o.requests
	r.failed += o.failed
	r.sent += o.sent
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	return r
}

func (r result) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

func main() {
	clients := flag.Int("clients", 8, "concurrent clients")
	duration := flag.Duration("duration", 4500*time.Millisecond, "measuring time per batch size and side (after a 500 ms warm-up per round)")
	batchList := flag.String("batches", "1,100,1000", "batch sizes, comma-separated")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	only := flag.String("only", "", "run only the api, the baseline or the tracing scenarios (for profiling)")
	rounds := flag.Int("rounds", 3, "alternate baseline and API this many times per batch size, splitting -duration")
	traceRounds := flag.Int("trace-rounds", 5, "tracing overhead: rounds per mode (off, on 10%), alternating; 0 skips it")
	traceDuration := flag.Duration("trace-duration", 1500*time.Millisecond, "tracing overhead: measuring time per round (after a 500 ms warm-up)")
	traceBatchList := flag.String("trace-batches", "1,100,1000", "tracing overhead: batch sizes, comma-separated")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	batches := parseBatches("-batches", *batchList)
	traceBatches := parseBatches("-trace-batches", *traceBatchList)
	sample, _ := makeEvent(0, 0).Marshal()
	fmt.Printf("benchapi: %d clients, %s per batch size and side in %d alternating rounds, GOMAXPROCS=%d, %s, events of about %d bytes, kfake broker in process\n\n",
		*clients, *duration, *rounds, runtime.GOMAXPROCS(0), runtime.Version(), len(sample))

	type row struct {
		batch     int
		base, api result
	}
	var rows []row
	if *only == "tracing" {
		batches = nil
	}
	// The machine is shared: baseline and API alternate in short rounds so
	// that a neighbour's load falls on both alike.
	for _, b := range batches {
		var base, api result
		for range *rounds {
			if *only != "api" {
				r, err := scenario(false, b, *clients, *duration/time.Duration(*rounds))
				if err != nil {
					log.Fatalf("baseline, batch %d: %v", b, err)
				}
				base = base.add(r)
			}
			if *only != "baseline" {
				r, err := scenario(true, b, *clients, *duration/time.Duration(*rounds))
				if err != nil {
					log.Fatalf("API, batch %d: %v", b, err)
				}
				api = api.add(r)
			}
		}
		slices.Sort(base.lat)
		slices.Sort(api.lat)
		rows = append(rows, row{b, base, api})
	}

	if len(rows) > 0 {
		fmt.Println("| batch | clients | baseline events/s | baseline p50 | baseline p99 | API events/s | API p50 | API p99 | API/baseline |")
		fmt.Println("|------:|--------:|------------------:|-------------:|-------------:|-------------:|--------:|--------:|-------------:|")
		for _, r := range rows {
			fmt.Printf("| %5d | %7d | %17.0f | %12s | %12s | %12.0f | %7s | %7s | %11.0f%% |\n",
				r.batch, *clients, r.base.rate(), ms(r.base.pct(0.5)), ms(r.base.pct(0.99)),
				r.api.rate(), ms(r.api.pct(0.5)), ms(r.api.pct(0.99)), 100*r.api.rate()/r.base.rate())
		}
		for _, r := range rows {
			if r.base.failed+r.api.failed > 0 {
				fmt.Printf("batch %d: %d baseline and %d API requests failed\n", r.batch, r.base.failed, r.api.failed)
			}
		}
	}

	if *traceRounds > 0 && (*only == "" || *only == "tracing") {
		if err := runTracing(traceBatches, *clients, *traceRounds, *traceDuration); err != nil {
			log.Fatal(err)
		}
	}
}

func parseBatches(flagName, list string) []int {
	var batches []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("%s: %q is not a positive number", flagName, s)
		}
		batches = append(batches, n)
	}
	return batches
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func init() {
	log.SetFlags(0)
	log.SetOutput(os.Stderr)
}
