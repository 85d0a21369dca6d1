package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Sender posts events to the API's /v1/events in NDJSON batches with
// client-set event ids. A batch the API answers 503 (back-pressure, or a
// broker that is not there yet) or cannot be reached for is posted again
// with the same ids, so a retry never adds an event: what gold must hold is
// exactly IDs.
type Sender struct {
	// URL is the endpoint, http://<api>/v1/events; Key the bearer token.
	URL, Key string
	// Batch is events per request (default 500), Inflight the requests in
	// flight (default 4).
	Batch, Inflight int
	// Attempts per batch (default 100) and the wait between them (default
	// 100 ms).
	Attempts  int
	RetryWait time.Duration
	// Client defaults to one with a 30 s timeout.
	Client *http.Client
	// Realistic sends events of about 230 bytes (a page view's path,
	// referrer, screen and session), event times spread over the 24 hours
	// before now, and resends 5% of each batch's events again in the next
	// batch, ids and all, as clients that retry do: gold must still hold
	// each id once.
	Realistic bool

	mu        sync.Mutex
	accepted  []string
	latencies []time.Duration // of the accepted requests, from send to the 202
	n         int             // events made so far: the next event's index
	resend    [][]byte        // Realistic: lines of the last batch to send again
}

// Send posts n events. With pause > 0 it sends one request at a time and
// waits pause after each (a steady trickle); otherwise Inflight requests go
// at once.
func (s *Sender) Send(ctx context.Context, n int, pause time.Duration) error {
	batch := s.Batch
	if batch <= 0 {
		batch = 500
	}
	conc := s.Inflight
	if conc <= 0 {
		conc = 4
	}
	if pause > 0 {
		conc = 1
	}
	type job struct{ first, size int }
	work := make(chan job)
	errc := make(chan error, conc)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if err := s.post(ctx, j.first, j.size); err != nil {
					errc <- err
					return
				}
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}()
	}
	var err error
loop:
	for left := n; left > 0; left -= batch {
		size := min(batch, left)
		s.mu.Lock()
		first := s.n
		s.n += size
		s.mu.Unlock()
		select {
		case work <- job{first, size}:
		case err = <-errc:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// Latency returns the p50 and p99 of the accepted requests' latencies,
// from sending the request to reading the 202.
func (s *Sender) Latency() (p50, p99 time.Duration) {
	s.mu.Lock()
	l := slices.Clone(s.latencies)
	s.mu.Unlock()
	if len(l) == 0 {
		return 0, 0
	}
	slices.Sort(l)
	return l[len(l)/2], l[min(len(l)-1, len(l)*99/100)]
}

// IDs are the event ids the API accepted (202) so far; with Realistic, the
// resent ones twice.
func (s *Sender) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// post sends events first..first+size-1: payments, audit logins and page
// views, so that every gold path (amounts, actors, plain events) is fed.
func (s *Sender) post(ctx context.Context, first, size int) error {
	body := s.Body(first, size)
	return s.postBody(ctx, bytes.NewBuffer(body))
}

// Body is the NDJSON request body of events first..first+size-1, as post
// sends it (with Realistic, the previous batch's resends too).
func (s *Sender) Body(first, size int) []byte {
	var body bytes.Buffer
	if s.Realistic {
		s.realistic(&body, first, size)
		return body.Bytes()
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range size {
		k := first + i
		id := uuid.Must(uuid.NewV7()).String()
		user := fmt.Sprintf("u-%d", k%997)
		switch k % 10 {
		case 0:
			fmt.Fprintf(&body, `{"event_id":%q,"type":"payment.succeeded","occurred_at":%q,"source":"web","user_id":%q,"properties":{"amount":"%d.90","currency":"EUR"}}`+"\n", id, now, user, k%100)
		case 1:
			fmt.Fprintf(&body, `{"event_id":%q,"type":"audit.login","occurred_at":%q,"source":"admin","user_id":%q,"properties":{"actor":%q,"action":"login"}}`+"\n", id, now, user, user)
		default:
			fmt.Fprintf(&body, `{"event_id":%q,"type":"page_view","occurred_at":%q,"source":"web","user_id":%q,"properties":{"path":"/p/%d"}}`+"\n", id, now, user, k%50)
		}
	}
	return body.Bytes()
}

// realistic writes events first..first+size-1 as Realistic says, then the
// previous batch's resends, and keeps 5% of these for the next.
func (s *Sender) realistic(body *bytes.Buffer, first, size int) {
	now := time.Now().UTC()
	var keep [][]byte
	for i := range size {
		k := first + i
		at := now.Add(-time.Duration(k*7919%86_400_000) * time.Millisecond).Format(time.RFC3339Nano)
		line := fmt.Appendf(nil, `{"event_id":%q,"type":"page_view","occurred_at":%q,"source":"web","user_id":"user-%d",`+
			`"properties":{"path":"/products/%d","referrer":"https://www.example.com/search?q=item+%d","screen":"1920x1080","session":"s-%d"}}`+"\n",
			uuid.Must(uuid.NewV7()).String(), at, k%9973, k%5000, k%811, k/10)
		body.Write(line)
		if k%20 == 0 {
			keep = append(keep, line)
		}
	}
	s.mu.Lock()
	for _, l := range s.resend {
		body.Write(l)
	}
	s.resend = keep
	s.mu.Unlock()
}

// postBody posts one request body until it is accepted.
func (s *Sender) postBody(ctx context.Context, body *bytes.Buffer) error {
	size := bytes.Count(body.Bytes(), []byte("\n"))
	attempts, wait, hc := s.Attempts, s.RetryWait, s.Client
	if attempts <= 0 {
		attempts = 100
	}
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	var last string
	for range attempts {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body.Bytes()))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+s.Key)
		req.Header.Set("Content-Type", "application/x-ndjson")
		sent := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			last = err.Error()
			time.Sleep(wait)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			var r struct {
				Accepted int      `json:"accepted"`
				EventIDs []string `json:"event_ids"`
			}
			if err := json.Unmarshal(b, &r); err != nil || r.Accepted != size || len(r.EventIDs) != size {
				return fmt.Errorf("202 with %q for %d events", b, size)
			}
			s.mu.Lock()
			s.accepted = append(s.accepted, r.EventIDs...)
			s.latencies = append(s.latencies, time.Since(sent))
			s.mu.Unlock()
			return nil
		case http.StatusServiceUnavailable:
			last = fmt.Sprintf("%s %s", resp.Status, b)
			time.Sleep(wait)
		default:
			return fmt.Errorf("POST /v1/events: %s %s", resp.Status, b)
		}
	}
	return fmt.Errorf("POST /v1/events not accepted after %d attempts: %s", attempts, last)
}
