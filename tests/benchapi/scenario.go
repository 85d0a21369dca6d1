package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acme/pipeline/ingest"
)

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

// topicSize counts the records on the topic, the sum of its partitions'
// end offsets.
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
