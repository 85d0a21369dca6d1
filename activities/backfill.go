package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// Layers a backfill rebuilds.
const (
	LayerSilver = "silver"
	LayerGold   = "gold"
	LayerMarts  = "marts"
)

// BackfillGeneration is the generation (see lake.CompactedSilverKey) of the
// silver files a backfill writes. It is fixed, so a rerun over the same
// bronze objects writes the same keys with the same rows; hour compaction
// that later merges them counts on from it.
const BackfillGeneration = 1000

// Error types of the backfill activities that no retry can fix.
const (
	// ErrTypeBackfillInput: the input names a bad day, topic or layer.
	ErrTypeBackfillInput = "InvalidInput"
	// ErrTypeBackfill: a bronze or silver object is missing or corrupt, or
	// the warehouse refused the rows.
	ErrTypeBackfill = "BackfillFailed"
)

// BackfillerConfig holds what a Backfiller needs. Lake and Store are required.
type BackfillerConfig struct {
	Lake  *lake.Store
	Store *warehouse.Store
	// RowGroupRows is the row-group size of the silver files written. Default
	// lake.DefaultRowGroupRows.
	RowGroupRows int64
}

// Validate reports a missing field.
func (c BackfillerConfig) Validate() error {
	if c.Lake == nil {
		return errors.New("backfiller: Lake is required")
	}
	if c.Store == nil {
		return errors.New("backfiller: Store is required")
	}
	return nil
}

// Backfiller holds the clients of the Backfill workflow's activities.
type Backfiller struct {
	lake *lake.Store
	wh   *warehouse.Store
	rg   int64
	m    *backfillMetrics
}

// backfillMetrics are the backfill's progress instruments (Prometheus names
// in parentheses). Dry runs record nothing.
//
//   - pipeline.backfill.rows{layer,outcome} (pipeline_backfill_rows_total):
//     layer silver, outcome written: the day's distinct events written as
//     silver rows; layer gold, outcome inserted: rows inserted into
//     gold.events.
//   - pipeline.backfill.days{layer} (pipeline_backfill_days_total): days
//     whose layer (silver, gold, marts) was rebuilt.
//   - pipeline.backfill.day.duration{layer} (pipeline_backfill_day_duration_seconds):
//     time to rebuild one day's layer (silver: bronze read included; gold:
//     the silver read, when silver was not rebuilt, included).
//
// A retried attempt counts again what it rewrites.
type backfillMetrics struct {
	rows, days metric.Int64Counter
	duration   metric.Float64Histogram
}

func newBackfillMetrics() (*backfillMetrics, error) {
	m := otel.Meter(instrumentationName)
	bm := &backfillMetrics{}
	var err error
	if bm.rows, err = m.Int64Counter("pipeline.backfill.rows",
		metric.WithDescription("Rows a backfill wrote, by layer and outcome (silver written, gold inserted)."),
		metric.WithUnit("{row}")); err != nil {
		return nil, err
	}
	if bm.days, err = m.Int64Counter("pipeline.backfill.days",
		metric.WithDescription("Days whose layer a backfill rebuilt, by layer."),
		metric.WithUnit("{day}")); err != nil {
		return nil, err
	}
	if bm.duration, err = m.Float64Histogram("pipeline.backfill.day.duration",
		metric.WithDescription("Time to rebuild one day's layer, by layer."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)); err != nil {
		return nil, err
	}
	return bm, nil
}

// layerDone records one day's layer completed in time since began, and,
// unless outcome is empty, its rows. A nil receiver (a Backfiller not built by
// NewBackfiller) records nothing.
func (bm *backfillMetrics) layerDone(ctx context.Context, layer string, began time.Time, outcome string, rows int64) {
	if bm == nil {
		return
	}
	l := attribute.String("layer", layer)
	if outcome != "" {
		bm.rows.Add(ctx, rows, metric.WithAttributes(l, attribute.String("outcome", outcome)))
	}
	bm.days.Add(ctx, 1, metric.WithAttributes(l))
	bm.duration.Record(ctx, time.Since(began).Seconds(), metric.WithAttributes(l))
}

// NewBackfiller builds the backfill activities.
func NewBackfiller(cfg BackfillerConfig) (*Backfiller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newBackfillMetrics()
	if err != nil {
		return nil, err
	}
	return &Backfiller{lake: cfg.Lake, wh: cfg.Store, rg: cfg.RowGroupRows, m: m}, nil
}

// BackfillDayInput names one UTC day to rebuild. Day, Topic and Layers are
// required.
type BackfillDayInput struct {
	Day    string   `json:"day"`    // YYYY-MM-DD, by event time (UTC)
	Topic  string   `json:"topic"`  // the bronze objects' topic
	Layers []string `json:"layers"` // any of silver, gold, marts
	DryRun bool     `json:"dry_run"`
}

// BackfillDayResult reports what was (or, in a dry run, would be) rebuilt.
type BackfillDayResult struct {
	Day           string   `json:"day"`
	DryRun        bool     `json:"dry_run"`
	BronzeObjects int      `json:"bronze_objects"` // bronze objects whose event hours touch the day
	Records       int64    `json:"records"`        // records in them
	Quarantined   int64    `json:"quarantined"`    // records that failed cleaning
	OtherDays     int64    `json:"other_days"`     // cleaned records of other days
	Duplicates    int64    `json:"duplicates"`     // cleaned records of the day whose event_id was seen already
	Rows          int64    `json:"rows"`           // distinct events of the day: the silver rows
	SilverFiles   []string `json:"silver_files,omitempty"`
	SilverReplace int      `json:"silver_replaced"` // live silver files of the day retired
	GoldBefore    int64    `json:"gold_before"`     // gold.events rows of the day before
	GoldDeleted   int64    `json:"gold_deleted"`
	GoldInserted  int64    `json:"gold_inserted"`
	GoldPayments  int64    `json:"gold_payments"`
	GoldAudit     int64    `json:"gold_audit"`
	MartRows      int64    `json:"mart_rows"` // rows of the three marts for the day
}

// BackfillHeartbeat is the progress an attempt reports.
type BackfillHeartbeat struct {
	Day    string `json:"day"`
	Stage  string `json:"stage"`
	Done   int    `json:"bronze_done"`
	Total  int    `json:"bronze_total"`
	Rows   int64  `json:"rows"`
	DryRun bool   `json:"dry_run"`
}

// BackfillDay rebuilds one UTC day, layer by layer:
//
//   - silver: reads the bronze objects of Topic whose event hours touch the
//     day (from pipeline.bronze_objects), cleans each record with
//     event.Decode (the stream's rule), keeps the events of the day, keeps
//     the first of each event_id by (received_at, partition, offset), writes
//     one Parquet file per event hour and partition with a deterministic key,
//     and makes them the live files of the day's hours for Topic, retiring
//     the others (pipeline.silver_objects) in one transaction;
//   - gold: replaces the day in gold from those rows (or, without silver,
//     from the day's live silver files) in one transaction;
//   - marts: rebuilds the day's marts.
//
// Every step replaces what it writes, so a retry or a rerun leaves the same
// objects and tables. A dry run reads and counts, and changes nothing.
func (b *Backfiller) BackfillDay(ctx context.Context, in BackfillDayInput) (BackfillDayResult, error) {
	day, err := warehouse.ParseDay(in.Day)
	if err != nil {
		return BackfillDayResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("day: %q: %v", in.Day, err), ErrTypeBackfillInput, err)
	}
	if in.Topic == "" {
		return BackfillDayResult{}, temporal.NewNonRetryableApplicationError("topic: required", ErrTypeBackfillInput, nil)
	}
	layers := map[string]bool{}
	for _, l := range in.Layers {
		if l != LayerSilver && l != LayerGold && l != LayerMarts {
			return BackfillDayResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("layers: unknown layer %q", l), ErrTypeBackfillInput, nil)
		}
		layers[l] = true
	}
	log := activity.GetLogger(ctx)
	start, end := day.Bounds(time.UTC)
	res := BackfillDayResult{Day: day.String(), DryRun: in.DryRun}
	hb := BackfillHeartbeat{Day: res.Day, DryRun: in.DryRun}
	var mu sync.Mutex
	beat := func(stage string) {
		mu.Lock()
		hb.Stage, hb.Rows = stage, res.Rows
		cur := hb
		mu.Unlock()
		activity.RecordHeartbeat(ctx, cur)
	}
	// Keep heartbeating through long steps (a gold replacement, the marts).
	stopBeats := make(chan struct{})
	defer close(stopBeats)
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopBeats:
				return
			case <-t.C:
				mu.Lock()
				cur := hb
				mu.Unlock()
				activity.RecordHeartbeat(ctx, cur)
			}
		}
	}()

	var rows []event.Row
	var sources []string
	began := time.Now()
	if layers[LayerSilver] || in.DryRun {
		objs, err := b.wh.BronzeTouching(ctx, in.Topic, start, end)
		if err != nil {
			return res, err
		}
		res.BronzeObjects = len(objs)
		mu.Lock()
		hb.Total = len(objs)
		mu.Unlock()
		beat("read bronze")
		winners := map[[16]byte]int{}
		for i, o := range objs {
			recs, err := b.readBronze(ctx, o)
			if err != nil {
				return res, err
			}
			res.Records += int64(len(recs))
			for j := range recs {
				row, ok := cleanForBackfill(&recs[j])
				if !ok {
					res.Quarantined++
					continue
				}
				if row.OccurredAt < start.UnixMicro() || row.OccurredAt >= end.UnixMicro() {
					res.OtherDays++
					continue
				}
				if k, dup := winners[row.EventID]; dup {
					res.Duplicates++
					if firstReceived(&row, &rows[k]) {
						rows[k] = row
					}
					continue
				}
				winners[row.EventID] = len(rows)
				rows = append(rows, row)
			}
			sources = append(sources, o.Key)
			res.Rows = int64(len(rows))
			mu.Lock()
			hb.Done = i + 1
			mu.Unlock()
			beat("read bronze")
		}
		if layers[LayerSilver] {
			if err := b.writeSilverDay(ctx, in.Topic, start, end, rows, &res); err != nil {
				return res, err
			}
			if !in.DryRun {
				sources = res.SilverFiles
				b.m.layerDone(ctx, LayerSilver, began, "written", int64(len(rows)))
			}
			beat("silver written")
		}
	}
	if layers[LayerGold] {
		began = time.Now()
		if res.GoldBefore, err = b.wh.GoldEventsBetween(ctx, start, end); err != nil {
			return res, err
		}
		if !layers[LayerSilver] {
			if rows, sources, err = b.readSilverDay(ctx, in.Topic, start, end); err != nil {
				return res, err
			}
			if !in.DryRun {
				res.Rows = int64(len(rows))
			}
		}
		if !in.DryRun {
			beat("gold")
			rr, err := b.wh.ReplaceDays(ctx, warehouse.ReplaceInput{From: day, To: day, Loc: time.UTC,
				Rows: warehouse.SliceRows(rows), Sources: sources})
			if err != nil {
				if warehouse.IsPermanent(err) {
					return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("gold of %s: %v", res.Day, err), ErrTypeBackfill, err)
				}
				return res, fmt.Errorf("gold of %s: %w", res.Day, err)
			}
			res.GoldDeleted, res.GoldInserted, res.GoldPayments, res.GoldAudit = rr.Deleted, rr.Inserted, rr.Payments, rr.Audit
			b.m.layerDone(ctx, LayerGold, began, "inserted", rr.Inserted)
		}
	}
	if layers[LayerMarts] && !in.DryRun {
		beat("marts")
		began = time.Now()
		mr, err := b.wh.BuildMarts(ctx, day, time.UTC)
		if err != nil {
			if warehouse.IsPermanent(err) {
				return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("marts of %s: %v", res.Day, err), ErrTypeBackfill, err)
			}
			return res, fmt.Errorf("marts of %s: %w", res.Day, err)
		}
		res.MartRows = mr.ProductMetrics + mr.Revenue + mr.AuditSummary
		b.m.layerDone(ctx, LayerMarts, began, "", 0)
	}
	beat("done")
	log.Info("backfill day done", "day", res.Day, "dry_run", in.DryRun, "bronze_objects", res.BronzeObjects,
		"records", res.Records, "rows", res.Rows, "silver_files", len(res.SilverFiles), "gold_inserted", res.GoldInserted)
	return res, nil
}

// readBronze reads one recorded bronze object and checks it against the index.
func (b *Backfiller) readBronze(ctx context.Context, o warehouse.BronzeObject) ([]lake.Record, error) {
	data, err := b.lake.Get(ctx, o.Key)
	if errors.Is(err, lake.ErrNotFound) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bronze object %s (topic %s partition %d offsets %d..%d) is recorded in pipeline.bronze_objects but missing from the bucket",
				o.Key, o.Topic, o.Partition, o.First, o.Last), ErrTypeBackfill, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read bronze %s: %w", o.Key, err)
	}
	recs, err := lake.DecodeBronze(data)
	if err == nil && len(recs) != o.Records {
		err = fmt.Errorf("holds %d records, index says %d", len(recs), o.Records)
	}
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bronze object %s (topic %s partition %d offsets %d..%d) is corrupt: %v", o.Key, o.Topic, o.Partition, o.First, o.Last, err),
			ErrTypeBackfill, err)
	}
	return recs, nil
}

// cleanForBackfill applies the stream's cleaning rule to one record:
// event.Decode without assigning ids, occurred_at bounded by the record's
// Kafka timestamp.
func cleanForBackfill(r *lake.Record) (event.Row, bool) {
	opt := event.Options{}
	if r.Time.Year() >= 2000 {
		opt.Now = r.Time
	}
	ev, errs := event.Decode(r.Value, opt)
	if len(errs) > 0 {
		return event.Row{}, false
	}
	row, err := ev.ToRow(r.Partition, r.Offset)
	if err != nil {
		return event.Row{}, false
	}
	return row, true
}

// firstReceived reports whether a wins over b for the same event_id: the
// first by (received_at, partition, offset), as gold loads decide.
func firstReceived(a, b *event.Row) bool {
	if c := cmp.Compare(a.ReceivedAt, b.ReceivedAt); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(a.Partition, b.Partition); c != 0 {
		return c < 0
	}
	return a.Offset < b.Offset
}

type hourPartition struct {
	hour      time.Time
	partition int32
}

// writeSilverDay writes rows (the day's distinct events) as one file per event
// hour and partition and makes them the live silver files of the day's hours
// for topic, retiring every other live file of those hours and topic. In a
// dry run it only fills res.
func (b *Backfiller) writeSilverDay(ctx context.Context, topic string, start, end time.Time, rows []event.Row, res *BackfillDayResult) error {
	groups := map[hourPartition][]event.Row{}
	for i := range rows {
		hp := hourPartition{time.UnixMicro(rows[i].OccurredAt).UTC().Truncate(time.Hour), rows[i].Partition}
		groups[hp] = append(groups[hp], rows[i])
	}
	order := slices.SortedFunc(maps.Keys(groups), func(a, b hourPartition) int {
		if c := a.hour.Compare(b.hour); c != 0 {
			return c
		}
		return cmp.Compare(a.partition, b.partition)
	})
	outputs := make([]warehouse.SilverObject, 0, len(order))
	outKeys := map[string]bool{}
	for _, hp := range order {
		g := groups[hp]
		slices.SortFunc(g, func(a, b event.Row) int { return cmp.Compare(a.Offset, b.Offset) })
		first, last := g[0].Offset, g[len(g)-1].Offset
		key := lake.CompactedSilverKey(hp.hour, hp.partition, first, last, BackfillGeneration)
		outputs = append(outputs, warehouse.SilverObject{Key: key, Hour: hp.hour, Topic: topic, Partition: hp.partition,
			First: first, Last: last, Rows: int64(len(g))})
		outKeys[key] = true
		res.SilverFiles = append(res.SilverFiles, key)
	}
	live, err := b.wh.LiveSilverBetween(ctx, start, end)
	if err != nil {
		return err
	}
	var replaced []string
	for _, o := range live {
		if o.Topic == topic && !outKeys[o.Key] {
			replaced = append(replaced, o.Key)
		}
	}
	res.SilverReplace = len(replaced)
	if res.DryRun {
		return nil
	}
	for i, hp := range order {
		data, err := lake.EncodeRows(groups[hp], b.rg)
		if err != nil {
			return fmt.Errorf("silver %s: %w", outputs[i].Key, err)
		}
		if err := b.lake.Put(ctx, outputs[i].Key, data, lake.ParquetContentType); err != nil {
			return err
		}
		outputs[i].Bytes = int64(len(data))
		activity.RecordHeartbeat(ctx, BackfillHeartbeat{Day: res.Day, Stage: "write silver", Done: i + 1, Total: len(order), Rows: res.Rows})
	}
	if err := b.wh.ReplaceSilver(ctx, outputs, replaced, nil); err != nil {
		return fmt.Errorf("silver of %s: %w", res.Day, err)
	}
	return nil
}

// readSilverDay reads the live silver files of topic for the hours of
// [start, end).
func (b *Backfiller) readSilverDay(ctx context.Context, topic string, start, end time.Time) ([]event.Row, []string, error) {
	live, err := b.wh.LiveSilverBetween(ctx, start, end)
	if err != nil {
		return nil, nil, err
	}
	var rows []event.Row
	var keys []string
	for _, o := range live {
		if o.Topic != topic {
			continue
		}
		data, err := b.lake.Get(ctx, o.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("read silver: %w", err)
		}
		rs, err := lake.DecodeRows(data)
		if err != nil {
			return nil, nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("silver file %s is corrupt: %v", o.Key, err), ErrTypeBackfill, err)
		}
		rows = append(rows, rs...)
		keys = append(keys, o.Key)
		activity.RecordHeartbeat(ctx, BackfillHeartbeat{Day: start.Format(time.DateOnly), Stage: "read silver", Rows: int64(len(rows))})
	}
	return rows, keys, nil
}
