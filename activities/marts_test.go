package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/warehouse"
)

// TestMartMetrics: pipeline.marts.pending counts the pending days at each
// collection, from the warehouse.
func TestMartMetrics(t *testing.T) {
	ctx := context.Background()
	store, _ := streamtest.Database(t)
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	if err := activities.RegisterMartMetrics(store); err != nil {
		t.Fatal(err)
	}
	gauge := func() int64 {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "pipeline.marts.pending" && len(g.DataPoints) == 1 {
					return g.DataPoints[0].Value
				}
			}
		}
		t.Fatal("no pipeline.marts.pending")
		return 0
	}
	load := func(at time.Time) {
		t.Helper()
		row := event.Row{EventID: uuid.Must(uuid.NewV7()), Type: "page_view", OccurredAt: at.UnixMicro(), ReceivedAt: at.UnixMicro(), Properties: "{}"}
		if _, err := store.LoadLive(ctx, warehouse.LoadInput{Rows: []event.Row{row}}); err != nil {
			t.Fatal(err)
		}
	}
	day := warehouse.Day{Year: 2026, Month: 11, Day: 24}
	for _, step := range []struct {
		name string
		do   func()
		want int64
	}{
		{"nothing built", func() {}, 0},
		{"built", func() {
			if _, err := store.BuildMarts(ctx, day, nil); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"a late event", func() { load(time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)) }, 1},
		{"rebuilt by the activity, in the recorded zone", func() {
			var ts testsuite.WorkflowTestSuite
			env := ts.NewTestActivityEnvironment()
			m := &activities.Marts{Store: store}
			env.RegisterActivity(m)
			v, err := env.ExecuteActivity(m.BuildMarts, activities.BuildMartsInput{Day: day.String()})
			var res activities.BuildMartsResult
			if err != nil || v.Get(&res) != nil || res.Zone != "UTC" || res.ProductMetrics != 1 {
				t.Fatalf("BuildMarts: %+v, %v", res, err)
			}
		}, 0},
	} {
		step.do()
		if got := gauge(); got != step.want {
			t.Fatalf("%s: pipeline.marts.pending %d, want %d", step.name, got, step.want)
		}
	}
}
