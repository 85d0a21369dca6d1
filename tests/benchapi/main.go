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
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/ingest"
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

// scenario runs clients for warm-up + d against a fresh broker, through the
// API or straight to Kafka, and returns what was measured after warm-up.
func scenario(viaAPI bool, batch, clients int, d time.Duration) (result, error) {
	// 8 MiB segments: kfake keeps segments in memory and copies one whole
	// when it grows, which at its default (100 MiB) dominates the broker's
	// time and adds pauses to both sides of the comparison.
	cluster, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(partitions, topic),
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(8 << 20)}))
	if err != nil {
		return result{}, err
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	var send func(ctx context.Context, client, i int) (int, error)
	if viaAPI {
		srv, err := ingest.New(ingest.Config{Brokers: brokers, Topic: topic, APIKeys: map[string]string{"bench": apiKey}},
			slog.New(slog.DiscardHandler))
		if err != nil {
			return result{}, err
		}
		defer srv.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return result{}, err
		}
		ctx, stop := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, ln) }()
		defer func() { stop(); <-served }()
		url := "http://" + ln.Addr().String() + "/v1/events"
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}, Timeout: 30 * time.Second}
		bodies := make([][][]byte, clients) // per client, a few distinct bodies
		for c := range bodies {
			for v := range 4 {
				bodies[c] = append(bodies[c], apiBody(c*4+v, batch))
			}
		}
		send = func(ctx context.Context, c, i int) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[c][i%4]))
			req.Header.Set("Authorization", "Bearer "+apiKey)
			req.Header.Set("Content-Type", "application/json")
			res, err := hc.Do(req)
			if err != nil {
				return 0, err
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				b, _ := io.ReadAll(res.Body)
				return 0, fmt.Errorf("%d %s", res.StatusCode, b)
			}
			var ok struct{ Accepted int }
			if err := json.NewDecoder(res.Body).Decode(&ok); err != nil {
				return 0, err
			}
			return ok.Accepted, nil
		}
	} else {
		w := baselineWriter(brokers)
		defer w.Close()
		msgs := make([][][]kafka.Message, clients)
		for c := range msgs {
			for v := range 4 {
				msgs[c] = append(msgs[c], kafkaBatch(c*4+v, batch))
			}
		}
		send = func(ctx context.Context, c, i int) (int, error) {
			m := msgs[c][i%4]
			return len(m), w.WriteMessages(ctx, m...)
		}
	}

	// Wait until the broker takes a write (the first metadata round trip).
	warm := time.Now().Add(10 * time.Second)
	for {
		if _, err := send(context.Background(), 0, 0); err == nil {
			break
		} else if time.Now().After(warm) {
			return result{}, fmt.Errorf("no successful request in 10 s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := int64(0)
	if viaAPI {
		before = int64(batch)
	}

	start := time.Now()
	measureFrom := start.Add(500 * time.Millisecond)
	end := measureFrom.Add(d)
	var mu sync.Mutex
	var res result
	var total int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var events, all int64
			requests, failed, sent := 0, 0, 0
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				n, err := send(context.Background(), c, i)
				t1 := time.Now()
				if err != nil {
					failed++
					if failed <= 3 {
						log.Printf("request failed: %v", err)
					}
					continue
				}
				all += int64(n)
				sent++
				if t0.After(measureFrom) && t1.Before(end) {
					lat = append(lat, t1.Sub(t0))
					events += int64(n)
					requests++
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.events += events
			res.requests += requests
			res.failed += failed
			res.sent += sent
			total += all
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = d
	res.sent++ // the warm-up request
	slices.Sort(res.lat)

	if viaAPI {
		n, err := topicSize(brokers)
		if err != nil {
			return res, err
		}
		if n != total+before {
			return res, fmt.Errorf("%d events answered 202 but %d records on the topic", total+before, n)
		}
	}
	return res, nil
}

// baselineWriter has the settings of the API's writer (ingest.newWriter).
func baselineWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:            kafka.TCP(brokers...),
		Topic:           topic,
		Balancer:        kafka.Murmur2Balancer{Consistent: true},
		RequiredAcks:    kafka.RequireAll,
		MaxAttempts:     3,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 500 * time.Millisecond,
		BatchSize:       250,
		BatchBytes:      1048588 - 61,
		BatchTimeout:    time.Millisecond,
		ReadTimeout:     5 * time.Second,
		WriteTimeout:    5 * time.Second,
		Transport:       &kafka.Transport{DialTimeout: 5 * time.Second, ClientID: "benchapi-baseline"},
	}
}

var occurred = time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)

func makeEvent(seed, i int) event.Event {
	return event.Event{
		EventID:    uuid.Must(uuid.NewV7()).String(),
		Type:       "page_view",
		OccurredAt: occurred.Add(time.Duration(i) * time.Millisecond),
		ReceivedAt: time.Now().UTC(),
		Source:     "web",
		UserID:     fmt.Sprintf("user-%d-%d", seed, i%97),
		Properties: json.RawMessage(fmt.Sprintf(`{"path":"/products/%d","referrer":"https://www.example.com/search?q=item+%d","screen":"1920x1080","session":"s-%d-%d"}`, i, i, seed, i/10)),
	}
}

// apiBody is a JSON array of batch events as a client sends them: no
// event_id or received_at (the API assigns them).
func apiBody(seed, batch int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		e := makeEvent(seed, i)
		fmt.Fprintf(&b, `{"type":%q,"occurred_at":%q,"source":%q,"user_id":%q,"properties":%s}`,
			e.Type, e.OccurredAt.Format(time.RFC3339Nano), e.Source, e.UserID, e.Properties)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// kafkaBatch is the same events as records, as the API writes them.
func kafkaBatch(seed, batch int) []kafka.Message {
	now := time.Now().UTC()
	headers := []kafka.Header{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: ingest.HeaderReceivedAt, Value: []byte(now.Format(time.RFC3339Nano))},
		{Key: ingest.HeaderAPIKeyName, Value: []byte("bench")},
	}
	msgs := make([]kafka.Message, batch)
	for i := range msgs {
		e := makeEvent(seed, i)
		v, err := e.Marshal()
		if err != nil {
			panic(err)
		}
		msgs[i] = kafka.Message{Key: e.Key(), Value: v, Headers: headers, Time: now}
	}
	return msgs
}

func topicSize(brokers []string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	for p := range partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			return 0, err
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			return 0, err
		}
		n += last
	}
	return n, nil
}

func init() {
	log.SetFlags(0)
	log.SetOutput(os.Stderr)
}
