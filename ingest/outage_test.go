package ingest_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/ingest"
)

// TestBrokerOutage stops the broker while clients are sending: requests get
// 503 with Retry-After (never 2xx) until it is back, and afterwards every
// event that was answered 202 is on the topic.
func TestBrokerOutage(t *testing.T) {
	dir := t.TempDir()
	c1, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(partitions, testTopic), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	brokers := c1.ListenAddrs()
	_, portStr, _ := net.SplitHostPort(brokers[0])
	port, _ := strconv.Atoi(portStr)
	_, base := startAPI(t, brokers, func(c *ingest.Config) { c.ProduceTimeout = time.Second })

	var (
		mu          sync.Mutex
		acceptedIDs []string
		accepted    atomic.Int64
		refused     atomic.Int64
		otherStatus []string
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var evs []string
				for j := range 20 {
					extra := fmt.Sprintf(`"user_id":"c%d-u%d"`, c, j%5)
					if j%2 == 0 { // half bring their own id, as retrying clients do
						extra += `,"event_id":"` + uuid.Must(uuid.NewV7()).String() + `"`
					}
					evs = append(evs, ev("page_view", extra))
				}
				r := post(t, base, jsonArray(evs...), nil)
				switch r.status {
				case http.StatusAccepted:
					mu.Lock()
					acceptedIDs = append(acceptedIDs, r.EventIDs...)
					mu.Unlock()
					accepted.Add(1)
				case http.StatusServiceUnavailable:
					if r.header.Get("Retry-After") == "" {
						mu.Lock()
						otherStatus = append(otherStatus, "503 without Retry-After")
						mu.Unlock()
					}
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
				default:
					mu.Lock()
					otherStatus = append(otherStatus, fmt.Sprintf("%d %s", r.status, r.raw))
					mu.Unlock()
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()

	waitFor(t, 20*time.Second, "20 accepted requests before the outage", func() bool { return accepted.Load() >= 20 })
	c1.Close()
	t.Logf("broker stopped after %d accepted requests", accepted.Load())
	acceptedAtStop := accepted.Load()
	waitFor(t, 20*time.Second, "10 refused requests during the outage", func() bool { return refused.Load() >= 10 })
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d %s", code, body)
	}
	t.Logf("%d requests accepted while the broker was stopping, %d refused", accepted.Load()-acceptedAtStop, refused.Load())

	c2, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(partitions, testTopic), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("restart broker on port %d: %v", port, err)
	}
	t.Cleanup(c2.Close)
	afterRestart := accepted.Load()
	waitFor(t, 30*time.Second, "20 accepted requests after the restart", func() bool { return accepted.Load() >= afterRestart+20 })
	stop()
	wg.Wait()
	waitFor(t, 5*time.Second, "/readyz after the restart", func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusOK })

	if len(otherStatus) > 0 {
		t.Errorf("unexpected answers: %v", otherStatus[:min(len(otherStatus), 5)])
	}
	onTopic := map[string]bool{}
	for _, rec := range readTopic(t, brokers, testTopic) {
		e, errs := event.Decode(rec.value, event.Options{})
		if errs != nil {
			t.Fatalf("bad record: %v", errs)
		}
		onTopic[e.EventID] = true
	}
	missing := 0
	for _, id := range acceptedIDs {
		if !onTopic[id] {
			missing++
		}
	}
	t.Logf("%d events accepted, %d records on the topic, %d requests refused", len(acceptedIDs), len(onTopic), refused.Load())
	if missing > 0 {
		t.Fatalf("%d of %d accepted events are missing from the topic", missing, len(acceptedIDs))
	}
}

// TestSlowBroker: when Kafka does not acknowledge within ProduceTimeout the
// request gets 503 and Retry-After in about ProduceTimeout.
func TestSlowBroker(t *testing.T) {
	c, brokers := startBroker(t)
	_, base := startAPI(t, brokers, func(c *ingest.Config) { c.ProduceTimeout = 300 * time.Millisecond })
	if r := post(t, base, []byte(ev("warmup", "")), nil); r.status != http.StatusAccepted {
		t.Fatalf("warm-up: %d %s", r.status, r.raw)
	}
	var slow atomic.Bool
	slow.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if slow.Load() {
			time.Sleep(time.Second)
		}
		return nil, nil, false
	})
	start := time.Now()
	r := post(t, base, []byte(ev("slow", "")), nil)
	took := time.Since(start)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || len(r.EventIDs) != 0 {
		t.Fatalf("slow broker: %d Retry-After=%q %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
	if took > 900*time.Millisecond {
		t.Errorf("503 came after %s; ProduceTimeout is 300ms", took)
	}
	slow.Store(false)
	waitFor(t, 10*time.Second, "a 202 once the broker is fast again", func() bool {
		return post(t, base, []byte(ev("fast", "")), nil).status == http.StatusAccepted
	})
}

// TestOverloaded: past MaxInFlight concurrent requests, 503 at once.
func TestOverloaded(t *testing.T) {
	c, brokers := startBroker(t)
	_, base := startAPI(t, brokers, func(c *ingest.Config) { c.MaxInFlight = 1; c.ProduceTimeout = 3 * time.Second })
	if r := post(t, base, []byte(ev("warmup", "")), nil); r.status != http.StatusAccepted {
		t.Fatalf("warm-up: %d %s", r.status, r.raw)
	}
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
		return nil, nil, false
	})
	done := make(chan response)
	go func() { done <- post(t, base, []byte(ev("first", "")), nil) }()
	<-entered
	r := post(t, base, []byte(ev("second", "")), nil)
	close(release)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Errorf("second request while the first holds the only slot: %d Retry-After=%q %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
	if first := <-done; first.status != http.StatusAccepted {
		t.Errorf("first request: %d %s", first.status, first.raw)
	}
}

// TestGracefulShutdown: cancelling Run's context lets a request that is
// waiting for Kafka finish with 202, then Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	c, brokers := startBroker(t)
	s, err := ingest.New(ingest.Config{Brokers: brokers, APIKeys: map[string]string{"test": testKey}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	waitFor(t, 5*time.Second, "/healthz", func() bool { code, _ := get(t, base+"/healthz"); return code == 200 })
	if r := post(t, base, []byte(ev("warmup", "")), nil); r.status != http.StatusAccepted {
		t.Fatalf("warm-up: %d %s", r.status, r.raw)
	}

	entered := make(chan struct{}, 1)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		entered <- struct{}{}
		time.Sleep(500 * time.Millisecond) // Kafka is slow to acknowledge
		return nil, nil, false
	})
	done := make(chan response)
	go func() { done <- post(t, base, []byte(ev("in_flight", "")), nil) }()
	<-entered
	cancel()
	r := <-done
	if r.status != http.StatusAccepted || len(r.EventIDs) != 1 {
		t.Fatalf("in-flight request during shutdown: %d %s", r.status, r.raw)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the in-flight request finished")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still accepts connections after shutdown")
	}
	found := false
	for _, rec := range readTopic(t, brokers, testTopic) {
		e, _ := event.Decode(rec.value, event.Options{})
		found = found || e.EventID == r.EventIDs[0]
	}
	if !found {
		t.Error("the event accepted during shutdown is not on the topic")
	}
}
