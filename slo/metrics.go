package slo

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/acme/pipeline/warehouse"
)

// registerMetrics registers the SLO gauges. Every one reads the database at
// collection (a few rows through indexes), not a value the process
// remembers: with several workers, any of them may run an evaluation, and
// every worker must report the same, current state.
func registerMetrics(store *warehouse.Store) error {
	meter := otel.Meter("github.com/acme/pipeline/slo")
	value, err := meter.Float64ObservableGauge("pipeline.slo.value",
		metric.WithDescription("The SLO's latest measured value: freshness in seconds, completeness in missing events, error_rate as a share, stream_running in shards not running."))
	if err != nil {
		return err
	}
	good, err := meter.Float64ObservableGauge("pipeline.slo.good",
		metric.WithDescription("1 when the SLO's latest measurement met its objective, else 0."))
	if err != nil {
		return err
	}
	open, err := meter.Int64ObservableGauge("pipeline.slo.alerts.open",
		metric.WithDescription("Open SLO alerts, by SLO and severity."))
	if err != nil {
		return err
	}
	fresh, err := meter.Float64ObservableGauge("pipeline.gold.freshness",
		metric.WithDescription("Seconds since the newest event visible in gold was received by the event API (202)."),
		metric.WithUnit("s"))
	if err != nil {
		return err
	}
	// Not an SLO, but read from the database at scrape like the others.
	pending, err := meter.Int64ObservableGauge("pipeline.silver.pending_loads",
		metric.WithDescription("Gold loads whose rows silver.events does not hold yet (pipeline.loads.silver_pending): the stream appends them within seconds, or sweeps them after a crash; a number that stays up means silver is not following gold."))
	if err != nil {
		return err
	}
	conflicting, err := meter.Int64ObservableGauge("pipeline.gold.conflicting_duplicates",
		metric.WithDescription("Conflicting duplicates loaded over the last 24 h (pipeline.loads.rows_conflicting): records whose event_id gold already held with other content (type, time, user, source or properties), kept out of every gold table; usually a client reusing ids. `pipeline status` lists the ids."))
	if err != nil {
		return err
	}
	lost, err := meter.Int64ObservableGauge("pipeline.stream.lost_offsets",
		metric.WithDescription("Offsets of the topic that retention deleted before the stream read them, ever, by topic and partition (pipeline.lost_offsets): records in no layer; `pipeline status` gives the ranges."))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		// A failed read leaves the series out of this scrape.
		if n, err := store.NewestVisible(ctx); err == nil && !n.IsZero() {
			o.ObserveFloat64(fresh, time.Since(n).Seconds())
		}
		if p, err := store.SilverPending(ctx); err == nil {
			o.ObserveInt64(pending, p.PendingLoads)
		}
		if c, err := store.ConflictingDuplicates(ctx, time.Now().Add(-24*time.Hour), 0); err == nil {
			o.ObserveInt64(conflicting, c.Records)
		}
		if byTopic, err := store.LostOffsetsTotal(ctx); err == nil {
			for topic, parts := range byTopic {
				for p, n := range parts {
					o.ObserveInt64(lost, n, metric.WithAttributes(attribute.String("topic", topic), attribute.Int("partition", int(p))))
				}
			}
		}
		if ms, err := store.LatestMeasurements(ctx, time.Now()); err == nil {
			for _, m := range ms {
				attrs := metric.WithAttributes(attribute.String("slo", m.SLO))
				o.ObserveFloat64(value, m.Value, attrs)
				g := 0.0
				if m.Good {
					g = 1
				}
				o.ObserveFloat64(good, g, attrs)
			}
		}
		if alerts, err := store.OpenAlerts(ctx); err == nil {
			for _, name := range Names {
				for _, sev := range []string{"page", "ticket"} {
					var n int64
					for _, a := range alerts {
						if a.SLO == name && a.Severity == sev {
							n++
						}
					}
					o.ObserveInt64(open, n, metric.WithAttributes(attribute.String("slo", name), attribute.String("severity", sev)))
				}
			}
		}
		return nil
	}, value, good, open, fresh, pending, conflicting, lost)
	return err
}
