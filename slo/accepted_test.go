package slo_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/slo"
)

// TestAcceptedRecorder counts per received_at hour across flushes and API
// processes, in PostgreSQL: an hour's total is the sum over processes, and a
// process's count only grows.
func TestAcceptedRecorder(t *testing.T) {
	ctx := context.Background()
	store, _ := streamtest.Database(t)
	h := time.Now().UTC().Truncate(time.Hour)
	a := slo.NewAcceptedRecorder(store, slog.New(slog.DiscardHandler))
	b := slo.NewAcceptedRecorder(store, slog.New(slog.DiscardHandler))

	a.Add(h.Add(time.Minute), 5)
	a.Add(h.Add(-time.Minute), 2) // the previous hour
	a.Flush(ctx)
	a.Add(h.Add(2*time.Minute), 3)
	a.Flush(ctx)
	a.Flush(ctx) // nothing new: no write
	b.Add(h.Add(3*time.Minute), 10)
	b.Flush(ctx)

	acc, err := store.Accounting(ctx, "events", h.Add(-time.Hour), h.Add(time.Hour), h, h)
	if err != nil {
		t.Fatal(err)
	}
	got := map[time.Time]int64{}
	for _, x := range acc {
		got[x.Hour] = x.Accepted
	}
	if got[h] != 18 || got[h.Add(-time.Hour)] != 2 {
		t.Fatalf("accepted per hour %v, want 18 this hour and 2 the previous one", got)
	}
	var rows int
	if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM pipeline.api_accepted`).Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("%d rows in pipeline.api_accepted (%v), want 3: two hours of one process, one of the other", rows, err)
	}
}
