package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// Defaults of CompactHoursInput.
const (
	DefaultAllowedLateness = 10 * time.Minute
	DefaultCompactMaxRows  = 1_000_000
	DefaultCompactMaxHours = 48
)

// CompactHoursInput asks to compact the silver files of closed event hours.
type CompactHoursInput struct {
	// Now is the workflow's time (workflow.Now). Required.
	Now time.Time `json:"now"`
	// AllowedLateness keeps an hour open this long after its end. Default 10m.
	AllowedLateness time.Duration `json:"allowed_lateness,omitempty"`
	// MaxRows bounds the rows of one compacted file. Default 1,000,000.
	MaxRows int64 `json:"max_rows,omitempty"`
	// MaxHours bounds the (hour, partition) pairs compacted by one call;
	// the rest wait for the next call. Default 48.
	MaxHours int `json:"max_hours,omitempty"`
}

// CompactedHour reports the compaction of one partition's files of one hour.
type CompactedHour struct {
	Hour       time.Time `json:"hour"`
	Partition  int32     `json:"partition"`
	FilesIn    int       `json:"files_in"`
	FilesOut   int       `json:"files_out"` // new files written
	Kept       int       `json:"kept"`      // files kept as they were
	RowsIn     int64     `json:"rows_in"`
	RowsOut    int64     `json:"rows_out"`
	Duplicates int64     `json:"duplicates"` // rows dropped: event_id seen earlier in the hour
	Conflict   bool      `json:"conflict,omitempty"`
	// HeldByBackfill: a backfill is rebuilding the hour's day; the hour
	// stays due and is compacted after it.
	HeldByBackfill bool `json:"held_by_backfill,omitempty"`
}

// CompactHoursResult reports a compaction run.
type CompactHoursResult struct {
	Hours   []CompactedHour `json:"hours"`
	Deleted int             `json:"deleted"` // replaced objects removed from the bucket
	More    bool            `json:"more"`    // more hours were due than MaxHours
	// SetAside are the pairs this run could not compact and set aside.
	SetAside []SetAsideHour `json:"set_aside,omitempty"`
}

// CompactHours merges the small silver files of every closed event hour (its
// end plus AllowedLateness is before Now), per partition and topic
// incarnation, into files of at most MaxRows rows, deduplicated by event_id
// (the first received wins), then
// retires the small ones: the swap is one transaction in
// pipeline.silver_objects, after which the replaced objects are deleted. A
// late file reopens its hour, and the next run compacts it again. Compacted
// files are named by the offset range they cover, a sum of their bytes and a
// generation (lake.MergedSilverKey), so a key is never written with other
// bytes. A retry at any point redoes the same work and ends in the same
// state.
//
// A pair that fails in a way no retry can fix (a live file missing from the
// bucket, a corrupt file, any non-retryable ApplicationError) is set aside
// with its reason (pipeline.silver_set_aside, one ERROR log line, the gauge
// pipeline_silver_hours_set_aside) and the run goes on with the next pair:
// one broken hour must not stop compaction of every later hour. It is tried
// again after a back-off and cleared when it compacts, or when a backfill of
// its day rewrites it. Any other error (S3 or PostgreSQL down, cancellation)
// fails the run, so that Temporal retries it.
func (a *Stream) CompactHours(ctx context.Context, in CompactHoursInput) (CompactHoursResult, error) {
	if in.Now.IsZero() {
		return CompactHoursResult{}, temporal.NewNonRetryableApplicationError("compact hours: Now is required", ErrTypeInvalidInput, nil)
	}
	in.AllowedLateness = cmp.Or(max(in.AllowedLateness, 0), DefaultAllowedLateness)
	in.MaxRows = cmp.Or(max(in.MaxRows, 0), DefaultCompactMaxRows)
	in.MaxHours = cmp.Or(max(in.MaxHours, 0), DefaultCompactMaxHours)
	log := a.logger(ctx)
	var res CompactHoursResult

	// Objects retired by an earlier run that stopped before deleting them.
	n, err := a.deleteReplaced(ctx)
	res.Deleted += n
	if err != nil {
		return res, err
	}
	if _, err := a.wh.PruneSetAsideHours(ctx); err != nil {
		return res, err
	}

	before := in.Now.Add(-time.Hour - in.AllowedLateness)
	due, err := a.wh.DirtySilverHours(ctx, before, in.Now, in.MaxHours+1)
	if err != nil {
		return res, err
	}
	if len(due) > in.MaxHours {
		due, res.More = due[:in.MaxHours], true
	}
	for _, ph := range due {
		ch, err := a.compactPartitionHour(ctx, ph, in.MaxRows)
		if err != nil {
			sa, serr := a.setAside(ctx, ph, err, in.Now)
			if serr != nil {
				return res, serr
			}
			res.SetAside = append(res.SetAside, sa)
			continue
		}
		if ph.SetAside {
			if _, err := a.wh.ClearSetAsideHour(ctx, ph.Hour, ph.Partition); err != nil {
				return res, err
			}
			log.Info("set-aside hour compacted after all: cleared", "hour", ph.Hour.Format("2006-01-02T15Z"), "partition", ph.Partition)
		}
		res.Hours = append(res.Hours, ch)
		activity.RecordHeartbeat(ctx, len(res.Hours))
		log.Info("hour compacted", "hour", ph.Hour.Format("2006-01-02T15Z"), "partition", ph.Partition,
			"files_in", ch.FilesIn, "files_out", ch.FilesOut, "kept", ch.Kept, "rows_in", ch.RowsIn, "rows_out", ch.RowsOut,
			"duplicates", ch.Duplicates, "conflict", ch.Conflict)
	}
	n, err = a.deleteReplaced(ctx)
	res.Deleted += n
	return res, err
}

// deleteReplaced deletes the objects of replaced silver files and marks them
// deleted.
func (a *Stream) deleteReplaced(ctx context.Context) (int, error) {
	total := 0
	for {
		keys, err := a.wh.ReplacedSilver(ctx, 1000)
		if err != nil || len(keys) == 0 {
			return total, err
		}
		if err := a.lake.Delete(ctx, keys...); err != nil {
			return total, fmt.Errorf("delete replaced silver files: %w", err)
		}
		if err := a.wh.MarkSilverDeleted(ctx, keys); err != nil {
			return total, err
		}
		total += len(keys)
	}
}

// chunk is one output file of a compaction: consecutive input files of one
// topic incarnation (offset ranges of two incarnations mean different
// records, so one file never holds both).
type chunk struct {
	incarnation int
	inputs      []warehouse.SilverObject
	rows        int64
	dropped     int64 // duplicates dropped from its inputs
	file        *os.File
	sum         hash.Hash // SHA-256 of the bytes written to file
	w           *lake.RowWriter
}

func (c *chunk) changed() bool { return len(c.inputs) > 1 || c.dropped > 0 }

func (a *Stream) compactPartitionHour(ctx context.Context, ph warehouse.SilverPartitionHour, maxRows int64) (CompactedHour, error) {
	ch := CompactedHour{Hour: ph.Hour, Partition: ph.Partition}
	where := fmt.Sprintf("silver hour %s partition %d", ph.Hour.Format("2006-01-02T15Z"), ph.Partition)
	inputs, err := a.wh.LiveSilver(ctx, ph.Hour, ph.Partition)
	if err != nil {
		return ch, err
	}
	ch.FilesIn = len(inputs)
	if len(inputs) == 0 {
		return ch, nil
	}
	// Checked after listing: a backfill planned from now on finds every
	// input in its sources, so what this run merges it can retire whole.
	if held, err := a.wh.RebuildOpen(ctx, ph.Hour); err != nil {
		return ch, err
	} else if held {
		ch.HeldByBackfill = true
		return ch, nil
	}

	var chunks []*chunk
	defer func() {
		for _, c := range chunks {
			if c.file != nil {
				c.file.Close()
				os.Remove(c.file.Name())
			}
		}
	}()
	var seen map[[16]byte]struct{} // event ids of the incarnation's files so far
	buf := make([]event.Row, 8192)
	var cur *chunk
	for _, in := range inputs {
		other := cur == nil || cur.incarnation != in.Incarnation
		if other || (cur.rows > 0 && cur.rows+in.Rows > maxRows) {
			f, err := os.CreateTemp(a.tmp, "compact-*.parquet")
			if err != nil {
				return ch, fmt.Errorf("%s: %w", where, err)
			}
			sum := sha256.New()
			cur = &chunk{incarnation: in.Incarnation, file: f, sum: sum, w: lake.NewRowWriter(io.MultiWriter(f, sum), a.rg)}
			chunks = append(chunks, cur)
		}
		if other {
			seen = map[[16]byte]struct{}{}
		}
		cur.inputs = append(cur.inputs, in)
		kept, dropped, err := a.copyDeduped(ctx, in, cur.w, seen, buf)
		if err != nil {
			return ch, fmt.Errorf("%s: %w", where, &objectError{obj: in, err: err})
		}
		cur.rows += kept
		cur.dropped += dropped
		ch.RowsIn += kept + dropped
		ch.Duplicates += dropped
		activity.RecordHeartbeat(ctx, in.Key)
	}

	var outputs []warehouse.SilverObject
	var replaced, confirmed []string
	for _, c := range chunks {
		if err := c.w.Close(); err != nil {
			return ch, fmt.Errorf("%s: %w", where, err)
		}
		if !c.changed() {
			ch.Kept++
			ch.RowsOut += c.rows
			if !c.inputs[0].Compacted {
				confirmed = append(confirmed, c.inputs[0].Key)
			}
			continue
		}
		for _, in := range c.inputs {
			replaced = append(replaced, in.Key)
		}
		if c.rows == 0 {
			continue // every row was a duplicate of an earlier file
		}
		first, last := c.inputs[0].First, c.inputs[0].Last
		gen := 0
		for _, in := range c.inputs {
			first, last = min(first, in.First), max(last, in.Last)
			if ki, err := lake.ParseKey(in.Key); err == nil {
				gen = max(gen, ki.Generation)
			}
		}
		var sum [sha256.Size]byte
		c.sum.Sum(sum[:0])
		key := lake.MergedSilverKey(ph.Hour, c.incarnation, ph.Partition, first, last, gen+1, sum)
		if err := a.lake.PutFile(ctx, key, c.file, lake.ParquetContentType); err != nil {
			return ch, fmt.Errorf("%s: %w", where, err)
		}
		st, err := c.file.Stat()
		if err != nil {
			return ch, fmt.Errorf("%s: %w", where, err)
		}
		outputs = append(outputs, warehouse.SilverObject{Key: key, Hour: ph.Hour, Topic: c.inputs[0].Topic, Incarnation: c.incarnation, Partition: ph.Partition,
			First: first, Last: last, Rows: c.rows, Bytes: st.Size(), Compacted: true})
		ch.FilesOut++
		ch.RowsOut += c.rows
	}

	if err := a.crash("compact-write", ph.Partition); err != nil {
		return ch, err
	}
	err = a.wh.ReplaceSilver(ctx, outputs, replaced, confirmed)
	if err == nil {
		err = a.crash("compact-swap", ph.Partition)
	}
	if errors.Is(err, warehouse.ErrSilverChanged) {
		// Another run compacted these files meanwhile, or retired one of
		// our keys (same bytes, written by an earlier attempt): keep the
		// outputs that run recorded live, delete the others (the objects
		// we wrote under a retired key included).
		ch.Conflict = true
		keys := make([]string, len(outputs))
		for i, o := range outputs {
			keys[i] = o.Key
		}
		states, serr := a.wh.SilverStates(ctx, keys)
		if serr != nil {
			return ch, serr
		}
		var orphans []string
		for _, k := range keys {
			if states[k] != "live" {
				orphans = append(orphans, k)
			}
		}
		if err := a.lake.Delete(ctx, orphans...); err != nil {
			return ch, fmt.Errorf("%s: %w", where, err)
		}
		return ch, nil
	}
	if err != nil {
		return ch, fmt.Errorf("%s: %w", where, err)
	}
	return ch, nil
}

// copyDeduped streams the rows of one silver file into w, dropping event_ids
// in seen (and adding the others).
func (a *Stream) copyDeduped(ctx context.Context, in warehouse.SilverObject, w *lake.RowWriter, seen map[[16]byte]struct{}, buf []event.Row) (kept, dropped int64, err error) {
	f, err := a.lake.GetFile(ctx, in.Key, a.tmp)
	if errors.Is(err, lake.ErrNotFound) {
		return 0, 0, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("silver file %s (partition %d offsets %d..%d) is live in pipeline.silver_objects but missing from the bucket",
				in.Key, in.Partition, in.First, in.Last), ErrTypeSilverMissing, err)
	}
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	rr, err := lake.NewRowReader(f, st.Size())
	if err != nil {
		return 0, 0, corrupt(in, err)
	}
	defer rr.Close()
	for {
		n, rerr := rr.Read(buf)
		out := buf[:0]
		for _, r := range buf[:n] {
			if _, dup := seen[r.EventID]; dup {
				dropped++
				continue
			}
			seen[r.EventID] = struct{}{}
			out = append(out, r)
		}
		if len(out) > 0 {
			if err := w.Write(out); err != nil {
				return kept, dropped, err
			}
			kept += int64(len(out))
		}
		if errors.Is(rerr, io.EOF) {
			return kept, dropped, nil
		}
		if rerr != nil {
			return kept, dropped, corrupt(in, rerr)
		}
	}
}

// corrupt is the error of a silver file that was read whole from the bucket
// into a local file and is not readable Parquet: reading it again gives the
// same bytes, so no retry fixes it.
func corrupt(in warehouse.SilverObject, err error) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("silver file %s (partition %d offsets %d..%d) is not readable Parquet: %v", in.Key, in.Partition, in.First, in.Last, err),
		ErrTypeSilverCorrupt, err)
}
