package activities

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/acme/pipeline/event"
)

const instrumentationName = "github.com/acme/pipeline/activities"

// streamMetrics are the stream's instruments, recorded through the global
// OTel MeterProvider (Prometheus names in parentheses, as served by
// telemetry.MetricsHandler):
//
//   - pipeline.stream.records{topic,outcome} (pipeline_stream_records_total):
//     records consumed; outcome cleaned or quarantined.
//   - pipeline.stream.gold.rows{topic,outcome} (pipeline_stream_gold_rows_total):
//     rows offered to gold; outcome inserted or duplicate.
//   - pipeline.stream.freshness{topic} (pipeline_stream_freshness_seconds):
//     per event, from received_at to the commit of its gold load.
//   - pipeline.stream.flush.duration{topic} (pipeline_stream_flush_duration_seconds):
//     one flush of a shard, its wait for records included.
//   - pipeline.stream.lag{topic,partition} (pipeline_stream_lag):
//     records in the partition not yet loaded, after the last flush.
//   - pipeline.stream.stage.duration{topic,stage} (pipeline_stream_stage_duration_seconds):
//     one partition's read, bronze and clean in a flush; the flush's gold
//     load.
//   - pipeline.stream.bytes{topic,stage} (pipeline_stream_bytes_total):
//     bytes read from Kafka into bronze objects.
//   - pipeline.silver.appends{path} (pipeline_silver_appends_total): loads
//     appended to silver.events; path flush (rows kept since the flush) or
//     sweep (rebuilt from bronze after a crash).
//   - pipeline.silver.rows (pipeline_silver_rows_total): rows appended to
//     silver.events.
type streamMetrics struct {
	silverLoads metric.Int64Counter
	silverRows  metric.Int64Counter
	stage       metric.Float64Histogram
	bytes       metric.Int64Counter
	records     metric.Int64Counter
	gold        metric.Int64Counter
	freshness   metric.Float64Histogram
	flush       metric.Float64Histogram
	lag         metric.Int64Gauge
}

func newStreamMetrics() (*streamMetrics, error) {
	m := otel.Meter(instrumentationName)
	var ms streamMetrics
	var err error
	if ms.records, err = m.Int64Counter("pipeline.stream.records",
		metric.WithDescription("Records consumed by the stream, by outcome (cleaned, quarantined)."),
		metric.WithUnit("{record}")); err != nil {
		return nil, err
	}
	if ms.gold, err = m.Int64Counter("pipeline.stream.gold.rows",
		metric.WithDescription("Rows offered to gold by the stream, by outcome (inserted, duplicate)."),
		metric.WithUnit("{row}")); err != nil {
		return nil, err
	}
	if ms.freshness, err = m.Float64Histogram("pipeline.stream.freshness",
		metric.WithDescription("Per event, time from received_at to the commit of its gold load."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300)); err != nil {
		return nil, err
	}
	if ms.flush, err = m.Float64Histogram("pipeline.stream.flush.duration",
		metric.WithDescription("Duration of one flush of a shard, its wait for records included."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30)); err != nil {
		return nil, err
	}
	if ms.lag, err = m.Int64Gauge("pipeline.stream.lag",
		metric.WithDescription("Records of the partition not yet loaded into gold, after the last flush."),
		metric.WithUnit("{record}")); err != nil {
		return nil, err
	}
	if ms.stage, err = m.Float64Histogram("pipeline.stream.stage.duration",
		metric.WithDescription("Duration of one stage of the stream: read, bronze, clean (per partition and flush), gold (per flush) and silver (per append to silver.events, beside the flushes)."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)); err != nil {
		return nil, err
	}
	if ms.bytes, err = m.Int64Counter("pipeline.stream.bytes",
		metric.WithDescription("Bytes written by a stage of the stream (bronze: the records as consumed from Kafka)."),
		metric.WithUnit("By")); err != nil {
		return nil, err
	}
	if ms.silverLoads, err = m.Int64Counter("pipeline.silver.appends",
		metric.WithDescription("Loads appended to silver.events, by path: flush (rows kept since the flush) or sweep (rebuilt from bronze)."),
		metric.WithUnit("{load}")); err != nil {
		return nil, err
	}
	if ms.silverRows, err = m.Int64Counter("pipeline.silver.rows",
		metric.WithDescription("Rows appended to silver.events."),
		metric.WithUnit("{row}")); err != nil {
		return nil, err
	}
	return &ms, nil
}

// recordSilver records one append of loads to silver.events and how long
// it took (claim, Parquet files, commit), as the stage silver.
func (m *streamMetrics) recordSilver(ctx context.Context, res silverResult, took time.Duration) {
	if m == nil {
		return
	}
	m.stage.Record(ctx, took.Seconds(), metric.WithAttributes(attribute.String("stage", "silver")))
	m.silverRows.Add(ctx, int64(res.Rows))
	m.silverLoads.Add(ctx, int64(len(res.Loads)-res.Swept), metric.WithAttributes(attribute.String("path", "flush")))
	m.silverLoads.Add(ctx, int64(res.Swept), metric.WithAttributes(attribute.String("path", "sweep")))
}

// recordFlush records one committed flush.
func (m *streamMetrics) recordFlush(ctx context.Context, topic string, parts []partFlush, inserted, duplicates int64, gold, took time.Duration) {
	if m == nil {
		return
	}
	t := attribute.String("topic", topic)
	topicOnly := metric.WithAttributes(t)
	committed := time.Now()
	var cleaned, quarantined int64
	for i := range parts {
		pf := &parts[i]
		cleaned += int64(len(pf.recs) - pf.quarantined)
		quarantined += int64(pf.quarantined)
		if pf.hwm >= 0 {
			m.lag.Record(ctx, max(0, pf.hwm-pf.next), metric.WithAttributes(t, attribute.String("partition", strconv.Itoa(int(pf.partition)))))
		}
		for j := range pf.rows {
			m.freshness.Record(ctx, committed.Sub(receivedAt(&pf.rows[j])).Seconds(), topicOnly)
		}
		if len(pf.recs) > 0 {
			for _, st := range []struct {
				name string
				d    time.Duration
			}{{"read", pf.read}, {"bronze", pf.bronze}, {"clean", pf.clean}} {
				m.stage.Record(ctx, st.d.Seconds(), metric.WithAttributes(t, attribute.String("stage", st.name)))
			}
			if !pf.reused {
				m.bytes.Add(ctx, pf.bytes, metric.WithAttributes(t, attribute.String("stage", "bronze")))
			}
		}
	}
	m.stage.Record(ctx, gold.Seconds(), metric.WithAttributes(t, attribute.String("stage", "gold")))
	m.records.Add(ctx, cleaned, metric.WithAttributes(t, attribute.String("outcome", "cleaned")))
	m.records.Add(ctx, quarantined, metric.WithAttributes(t, attribute.String("outcome", "quarantined")))
	m.gold.Add(ctx, inserted, metric.WithAttributes(t, attribute.String("outcome", "inserted")))
	m.gold.Add(ctx, duplicates, metric.WithAttributes(t, attribute.String("outcome", "duplicate")))
	m.flush.Record(ctx, took.Seconds(), topicOnly)
}

func receivedAt(r *event.Row) time.Time { return time.UnixMicro(r.ReceivedAt) }
