package tests

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

// TestNightlyAggregationOnTemporal runs the workflow on the real dev server
// with an in-process worker, twice, and checks the marts against figures
// computed by hand.
func TestNightlyAggregationOnTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close) // after the worker stops (clean-ups run last in, first out)

	day := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	at := func(h int) int64 { return day.Add(time.Duration(h) * time.Hour).UnixMicro() }
	row := func(typ, user string, h int, amount int64, cur string) event.Row {
		return event.Row{EventID: uuid.Must(uuid.NewV7()), Type: typ, UserID: user, OccurredAt: at(h), ReceivedAt: at(h),
			Properties: "{}", AmountMicros: amount, Currency: cur}
	}
	rows := []event.Row{
		row("page_view", "u1", 1, 0, ""), row("page_view", "u2", 2, 0, ""), row("page_view", "u1", 3, 0, ""),
		row("payment.captured", "u1", 4, 12_500_000, "EUR"), // 12.50
		row("payment.captured", "u2", 5, 7_250_000, "EUR"),  // 7.25
		row("payment.refunded", "u2", 6, 2_000_000, "EUR"),  // 2.00
		row("payment.captured", "u3", 7, 100_000_000, "USD"),
		row("page_view", "u9", 30, 0, ""), // the next day: not counted
	}
	if _, err := store.LoadLive(ctx, warehouse.LoadInput{Rows: rows, Topic: "events"}); err != nil {
		t.Fatal(err)
	}

	tc := dialTemporal(t)
	runWorker(t, worker.Config{Client: tc, Store: store})

	for attempt := 1; attempt <= 2; attempt++ { // the second run must change nothing
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.BatchQueue},
			workflows.NightlyAggregation, workflows.NightlyAggregationInput{Date: "2026-11-03"})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.NightlyAggregationResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("run %d: %v", attempt, err)
		}
		if res.ProductMetrics != 3 || res.Revenue != 2 {
			t.Fatalf("run %d: result %+v, want 3 event types and 2 currencies", attempt, res)
		}
		var events, users int64
		if err := store.Pool().QueryRow(ctx, `SELECT events, unique_users FROM gold.daily_product_metrics WHERE day = '2026-11-03' AND event_type = 'page_view'`).Scan(&events, &users); err != nil {
			t.Fatal(err)
		}
		if events != 3 || users != 2 {
			t.Fatalf("page_view: %d events, %d users; want 3 and 2", events, users)
		}
		var payments int64
		var gross, refunds, net string
		if err := store.Pool().QueryRow(ctx, `SELECT payments, gross::text, refunds::text, net::text FROM gold.daily_revenue WHERE day = '2026-11-03' AND currency = 'EUR'`).Scan(&payments, &gross, &refunds, &net); err != nil {
			t.Fatal(err)
		}
		if payments != 2 || gross != "19.750000" || refunds != "2.000000" || net != "17.750000" {
			t.Fatalf("EUR: payments %d gross %s refunds %s net %s; want 2, 19.75, 2.00, 17.75", payments, gross, refunds, net)
		}
	}
}
