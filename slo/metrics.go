package slo

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/acme/pipeline/warehouse"
)

type metrics struct {
	value, good metric.Float64Gauge
	openAlerts  metric.Int64Gauge

}

// newMetrics registers the SLO gauges, and pipeline.gold.freshness, which
// reads pipeline.loads at every collection (one row through a partial
// index) so that every worker reports the same, current value.
func newMetrics(store *warehouse.Store) (*metrics, error) {
	meter := otel.Meter("github.com/acme/pipeline/slo")
	m := &metrics{}
	var err error
	if m.value, err = meter.Float64Gauge("pipeline.slo.value",
		metric.WithDescription("The SLO's last measured value: freshness in seconds, completeness in missing events, error_rate as a share.")); err != nil {
		return nil, err
	}
	if m.good, err = meter.Float64Gauge("pipeline.slo.good",
		metric.WithDescription("1 when the SLO's last measurement met its objective, else 0.")); err != nil {
		return nil, err
	}
	if m.openAlerts, err = meter.Int64Gauge("pipeline.slo.alerts.open",
		metric.WithDescription("Open SLO alerts, by SLO and severity.")); err != nil {
		return nil, err
	}
	_, err = meter.Float64ObservableGauge("pipeline.gold.freshness",
		metric.WithDescription("Seconds since the newest event visible in gold was received by the event API (202)."),
		metric.WithUnit("s"),
		metric.WithFloat64Callback(func(ctx context.Context, o metric.Float64Observer) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			n, err := store.NewestVisible(ctx)
			if err == nil && !n.IsZero() {
				o.Observe(time.Since(n).Seconds())
			}
			return nil // a failed read leaves the series out of this scrape
		}))
	return m, err
}

func (m *metrics) record(ctx context.Context, ms warehouse.Measurement) {
	attrs := metric.WithAttributes(attribute.String("slo", ms.SLO))
	m.value.Record(ctx, ms.Value, attrs)
	g := 0.0
	if ms.Good {
		g = 1
	}
	m.good.Record(ctx, g, attrs)
}

func (m *metrics) open(ctx context.Context, open []warehouse.Alert) {
	for _, name := range Names {
		for _, sev := range []string{"page", "ticket"} {
			var n int64
			for _, a := range open {
				if a.SLO == name && a.Severity == sev {
					n++
				}
			}
			m.openAlerts.Record(ctx, n, metric.WithAttributes(attribute.String("slo", name), attribute.String("severity", sev)))
		}
	}
}
