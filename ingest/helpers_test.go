package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acme/pipeline/ingest"
	"github.com/acme/pipeline/internal/telemetry"
)

const (
	testKey    = "s3cret-test-key"
	testTopic  = "events"
	partitions = 12
)

func TestMain(m *testing.M) {
	os.Setenv("OTEL_TRACES_EXPORTER", "none")
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "ingest-test"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = shutdown(context.Background())
	os.Exit(code)
}

// startBroker runs an in-process Kafka-protocol broker on a loopback port
// with the topic "events" (12 partitions).
func startBroker(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.Ports(0), kfake.SeedTopics(partitions, testTopic)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startAPI serves a new API for brokers on an httptest server.
func startAPI(t testing.TB, brokers []string, mutate func(*ingest.Config)) (*ingest.Server, string) {
	t.Helper()
	cfg := ingest.Config{
		Brokers: brokers,
		Topic:   testTopic,
		APIKeys: map[string]string{"test": testKey, "other": "another-secret"},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := ingest.New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("ingest.New: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, hs.URL
}

type response struct {
	status   int
	header   http.Header
	raw      []byte
	Accepted int      `json:"accepted"`
	EventIDs []string `json:"event_ids"`
	Error    string   `json:"error"`
	Errors   []struct {
		Index   int    `json:"index"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	ErrorsOmitted int `json:"errors_omitted"`
}

// post sends body to POST /v1/events with the test key and JSON unless
// headers say otherwise (an empty value deletes a header).
func post(t testing.TB, base string, body []byte, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/events: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: raw}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("POST /v1/events: %d with a body that is not JSON: %q", res.StatusCode, raw)
	}
	return r
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

type record struct {
	partition int
	offset    int64
	key       string
	value     []byte
	headers   map[string]string
}

// readTopic reads every record of the topic with kafka-go readers, one per
// partition, from offset 0 to the high watermark.
func readTopic(t testing.TB, brokers []string, topic string) []record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []record
	for p := 0; p < partitions; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatalf("dial partition %d: %v", p, err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatalf("partition %d: last offset: %v", p, err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond,
		})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("partition %d: read at offset < %d: %v", p, last, err)
			}
			h := map[string]string{}
			for _, hd := range m.Headers {
				h[hd.Key] = string(hd.Value)
			}
			out = append(out, record{partition: m.Partition, offset: m.Offset, key: string(m.Key), value: m.Value, headers: h})
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// topicSize sums the partitions' end offsets: the records on the topic.
func topicSize(t testing.TB, brokers []string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	for p := 0; p < partitions; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], testTopic, p)
		if err != nil {
			t.Fatalf("dial partition %d: %v", p, err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		n += last
	}
	return n
}

func ev(typ string, extra string) string {
	s := `{"type":"` + typ + `","occurred_at":"2026-11-24T14:05:09Z"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func jsonArray(events ...string) []byte {
	return []byte("[" + strings.Join(events, ",") + "]")
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
