// Package demo sends realistic traffic to the event API for `pipeline dev
// --demo`: page views and clicks from a pool of users, payments in several
// currencies with occasional refunds, audit events, and a share of client
// retries that resend an event with the same event_id, which the pipeline
// must count once.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// Config says where to send and how much. Zero values take the defaults.
type Config struct {
	URL       string        // event API base URL, required
	APIKey    string        // bearer secret, required
	Rate      int           // events per second, default 50
	BatchSize int           // events per request, default 25
	RetryRate float64       // share of events resent with the same id, default 0.05
	Interval  time.Duration // reporting interval of the log line, default 30s
	Log       *slog.Logger
}

var (
	pages      = []string{"/", "/pricing", "/docs", "/blog/launch", "/signup", "/checkout"}
	currencies = []string{"EUR", "USD", "GBP", "BRL", "JPY"}
	actions    = []string{"login", "logout", "role.grant", "export", "api_key.create"}
)

// Event builds one realistic event at time now.
func Event(r *rand.Rand, now time.Time) map[string]any {
	user := fmt.Sprintf("u-%d", r.IntN(500))
	ev := map[string]any{
		"event_id":    uuid.Must(uuid.NewV7()).String(),
		"occurred_at": now.Add(-time.Duration(r.IntN(3000)) * time.Millisecond).UTC().Format(time.RFC3339Nano),
		"source":      []string{"web", "ios", "android"}[r.IntN(3)],
		"user_id":     user,
	}
	switch n := r.IntN(100); {
	case n < 70:
		ev["type"] = []string{"page_view", "click", "search"}[r.IntN(3)]
		ev["properties"] = map[string]any{"path": pages[r.IntN(len(pages))]}
	case n < 88:
		t := "payment.captured"
		if r.IntN(10) == 0 {
			t = "payment.refunded"
		}
		ev["type"] = t
		ev["properties"] = map[string]any{
			"amount":   fmt.Sprintf("%d.%02d", 1+r.IntN(300), r.IntN(100)),
			"currency": currencies[r.IntN(len(currencies))],
			"order_id": fmt.Sprintf("o-%d", r.IntN(1_000_000)),
		}
	default:
		outcome := "success"
		if r.IntN(8) == 0 {
			outcome = "denied"
		}
		ev["type"] = "audit." + []string{"auth", "admin", "data"}[r.IntN(3)]
		ev["properties"] = map[string]any{"actor": user, "action": actions[r.IntN(len(actions))], "outcome": outcome}
	}
	return ev
}

// Run sends traffic until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Rate <= 0 {
		cfg.Rate = 50
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 25
	}
	if cfg.RetryRate == 0 {
		cfg.RetryRate = 0.05
	}
	if cfg.Interval == 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	tick := time.NewTicker(time.Second * time.Duration(cfg.BatchSize) / time.Duration(cfg.Rate))
	defer tick.Stop()
	report := time.NewTicker(cfg.Interval)
	defer report.Stop()
	var sent, retried, refused int
	var last []map[string]any
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-report.C:
			cfg.Log.Info("demo traffic", "accepted", sent, "resent_same_id", retried, "refused_requests", refused)
		case <-tick.C:
			batch := make([]map[string]any, 0, cfg.BatchSize)
			for range cfg.BatchSize {
				if len(last) > 0 && r.Float64() < cfg.RetryRate {
					batch = append(batch, last[r.IntN(len(last))])
					retried++
					continue
				}
				batch = append(batch, Event(r, time.Now()))
			}
			if err := post(ctx, cfg, batch); err != nil {
				refused++
				cfg.Log.Warn("demo request refused", "err", err)
				continue
			}
			sent += len(batch)
			last = batch
		}
	}
}

func post(ctx context.Context, cfg Config, batch []map[string]any) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b.Bytes()))
	}
	return nil
}
