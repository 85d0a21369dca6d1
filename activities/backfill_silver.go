package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// SilverHourInput names one hour of a rebuild.
type SilverHourInput struct {
	Rebuild int64     `json:"rebuild"`
	Topic   string    `json:"topic"`
	Hour    time.Time `json:"hour"`
}

// SilverHourResult reports one hour's silver.
type SilverHourResult struct {
	Files   int   `json:"files"`
	Rows    int64 `json:"rows"`
	Retired int   `json:"retired"` // live files the new ones replace
	Kept    int   `json:"kept"`    // live files of later offsets, kept
}

// WriteBackfillSilverHour writes the hour's winners, streamed from the
// database, as one Parquet file per topic incarnation and partition (named
// by the rebuild, so no key is ever reused) and swaps them in for the live files of the offsets
// the rebuild read.
func (b *Backfiller) WriteBackfillSilverHour(ctx context.Context, in SilverHourInput) (SilverHourResult, error) {
	began := time.Now()
	hour := in.Hour.UTC()
	hb := newHeartbeater(ctx, 10*time.Second)
	defer hb.stop()
	var res SilverHourResult
	var outputs []warehouse.SilverObject
	var cur *hourFile
	defer func() {
		if cur != nil {
			cur.discard()
		}
	}()
	finish := func() error {
		o, err := cur.upload(ctx, b.lake, hour, in.Topic, in.Rebuild)
		cur = nil
		if err != nil {
			return err
		}
		outputs = append(outputs, o)
		res.Files++
		hb.set(res)
		return nil
	}
	batch := make([]event.Row, 0, 4096)
	for r, err := range b.wh.WinnersOfHour(ctx, in.Rebuild, hour) {
		if err != nil {
			return res, err
		}
		if cur != nil && (cur.partition != r.Partition || cur.incarnation != r.Incarnation) {
			if err := cur.write(batch); err != nil {
				return res, err
			}
			batch = batch[:0]
			if err := finish(); err != nil {
				return res, err
			}
		}
		if cur == nil {
			if cur, err = newHourFile(b.tmp, r.Incarnation, r.Partition, r.Offset, b.rg); err != nil {
				return res, err
			}
		}
		cur.last = r.Offset
		batch = append(batch, r)
		res.Rows++
		if len(batch) == cap(batch) {
			if err := cur.write(batch); err != nil {
				return res, err
			}
			batch = batch[:0]
		}
	}
	if cur != nil {
		if err := cur.write(batch); err != nil {
			return res, err
		}
		if err := finish(); err != nil {
			return res, err
		}
	}
	swap, err := b.wh.CommitRebuildSilverHour(ctx, in.Rebuild, in.Topic, hour, outputs)
	if errors.Is(err, warehouse.ErrSilverChanged) {
		return res, temporal.NewNonRetryableApplicationError(err.Error()+"; run the backfill of this day again", ErrTypeBackfill, err)
	}
	if err != nil {
		return res, permanentOr(err, "silver hour "+hour.Format("2006-01-02T15Z"))
	}
	res.Retired, res.Kept = len(swap.Retired), swap.Kept
	// The hour is whole again: compaction may take it up if it set it aside.
	if err := b.wh.ClearSetAsideHours(ctx, in.Topic, hour, hour.Add(time.Hour)); err != nil {
		return res, err
	}
	b.m.step(ctx, LayerSilver, began, "written", res.Rows, 0)
	activity.GetLogger(ctx).Info("backfill silver hour written", "rebuild", in.Rebuild, "hour", hour.Format("2006-01-02T15Z"),
		"files", res.Files, "rows", res.Rows, "retired", res.Retired, "kept", res.Kept)
	return res, nil
}

// hourFile is one partition's silver file of an hour (of one incarnation of
// the topic), being written to a temporary file.
type hourFile struct {
	incarnation int32
	partition   int32
	first, last int64
	f           *os.File
	w           *lake.RowWriter
}

func newHourFile(dir string, inc, p int32, first int64, rg int64) (*hourFile, error) {
	f, err := os.CreateTemp(dir, "backfill-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("silver temp file: %w", err)
	}
	return &hourFile{incarnation: inc, partition: p, first: first, last: first, f: f, w: lake.NewRowWriter(f, rg)}, nil
}

func (h *hourFile) write(rows []event.Row) error {
	if len(rows) == 0 {
		return nil
	}
	return h.w.Write(rows)
}

func (h *hourFile) discard() {
	h.f.Close()
	os.Remove(h.f.Name())
}

func (h *hourFile) upload(ctx context.Context, lk *lake.Store, hour time.Time, topic string, rebuild int64) (warehouse.SilverObject, error) {
	defer h.discard()
	inc := max(int(h.incarnation), 1)
	key := lake.RebuildSilverKey(hour, inc, h.partition, h.first, h.last, rebuild)
	if err := h.w.Close(); err != nil {
		return warehouse.SilverObject{}, fmt.Errorf("silver %s: %w", key, err)
	}
	if err := lk.PutFile(ctx, key, h.f, lake.ParquetContentType); err != nil {
		return warehouse.SilverObject{}, fmt.Errorf("silver %s: %w", key, err)
	}
	st, err := h.f.Stat()
	if err != nil {
		return warehouse.SilverObject{}, err
	}
	return warehouse.SilverObject{Key: key, Hour: hour, Topic: topic, Incarnation: inc, Partition: h.partition, First: h.first, Last: h.last,
		Rows: h.w.Rows(), Bytes: st.Size(), Compacted: true}, nil
}
