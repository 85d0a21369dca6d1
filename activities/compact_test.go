package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
)

// brokenStack is a stack whose stream wrote small silver files for three
// closed hours on two partitions.
type brokenStack struct {
	*stack
	hours []time.Time
	total int // records produced
	ex    streamtest.Expect
}

func newBrokenStack(t *testing.T) *brokenStack {
	h10 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	b := &brokenStack{stack: newStack(t, 2), hours: []time.Time{h10, h10.Add(time.Hour), h10.Add(2 * time.Hour)}}
	var msgs []streamtest.Msg
	for i, h := range b.hours {
		m, ex := streamtest.Mix(300, 2, h, uint64(20+i))
		msgs = append(msgs, m...)
		b.ex.Add(ex)
	}
	streamtest.Produce(t, b.brokers, b.topic, msgs)
	b.total = len(msgs)
	b.drain(startOffsets(2), CompactCycleInput{Topic: b.topic, MaxRecords: 100, FlushWait: 50 * time.Millisecond, MaxFlushes: 5}, b.total)
	return b
}

func (b *brokenStack) compact(now time.Time) (CompactHoursResult, error) {
	var res CompactHoursResult
	err := b.run(b.acts.CompactHours, CompactHoursInput{Now: now, MaxRows: 400}, &res)
	return res, err
}

// checkKeysNameContent checks that every live compacted file's key carries
// the sum of the bytes the bucket holds under it.
func (b *brokenStack) checkKeysNameContent() {
	b.t.Helper()
	for _, key := range b.strings(`SELECT object_key FROM pipeline.silver_objects WHERE state = 'live' AND compacted`) {
		data, err := b.lake.Get(context.Background(), key)
		if err != nil {
			b.t.Fatal(err)
		}
		ki, err := lake.ParseKey(key)
		sum := sha256.Sum256(data)
		if err != nil || ki.Sum != hex.EncodeToString(sum[:8]) {
			b.t.Errorf("%s: key sum %q, content sum %x (%v)", key, ki.Sum, sum[:8], err)
		}
	}
}

// TestCompactHoursSetsAsideBrokenHour breaks one small silver file of one
// hour and partition: compaction sets that pair aside with its reason and
// compacts every other pair; later runs skip it without failing; once the
// file is repaired the pair compacts (at once after ClearSetAsideHours, as
// a backfill does, or at its retry time) and silver is exact.
func TestCompactHoursSetsAsideBrokenHour(t *testing.T) {
	for _, tt := range []struct {
		name     string
		errType  string
		breakIt  func(b *brokenStack, key string) error
		backfill bool // repair with ClearSetAsideHours (else: wait for the retry)
	}{
		{"missing object", ErrTypeSilverMissing, func(b *brokenStack, key string) error {
			return b.lake.Delete(context.Background(), key)
		}, true},
		{"corrupt object", ErrTypeSilverCorrupt, func(b *brokenStack, key string) error {
			return b.lake.Put(context.Background(), key, []byte("PAR1 not parquet at all PAR1"), lake.ParquetContentType)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrokenStack(t)
			ctx := context.Background()
			h11 := b.hours[1]
			now := b.hours[2].Add(2 * time.Hour)
			keys := b.strings(`SELECT object_key FROM pipeline.silver_objects WHERE hour = $1 AND partition = 0 ORDER BY start_offset`, h11)
			if len(keys) < 2 {
				t.Fatalf("hour 11 partition 0 has %d files, want several", len(keys))
			}
			broken := keys[1]
			orig, err := b.lake.Get(ctx, broken)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.breakIt(b, broken); err != nil {
				t.Fatal(err)
			}

			res, err := b.compact(now)
			if err != nil {
				t.Fatalf("compaction failed instead of setting the hour aside: %v", err)
			}
			if len(res.SetAside) != 1 || !res.SetAside[0].Hour.Equal(h11) || res.SetAside[0].Partition != 0 ||
				res.SetAside[0].Key != broken || res.SetAside[0].ErrorType != tt.errType || !strings.Contains(res.SetAside[0].Reason, broken) {
				t.Fatalf("set aside: %+v, want hour 11 partition 0 %s %s", res.SetAside, broken, tt.errType)
			}
			if len(res.Hours) != 5 {
				t.Errorf("compacted %d pairs, want the 5 others: %+v", len(res.Hours), res.Hours)
			}
			if n := b.count(`SELECT count(*) FROM pipeline.silver_objects WHERE state = 'live' AND NOT compacted
				AND NOT (hour = $1 AND partition = 0)`, h11); n != 0 {
				t.Errorf("%d small files left outside the broken pair", n)
			}
			row := b.strings(`SELECT topic, error_type, object_key, attempts FROM pipeline.silver_set_aside`)
			if want := "events | " + tt.errType + " | " + broken + " | 1"; len(row) != 1 || row[0] != want {
				t.Fatalf("pipeline.silver_set_aside: %q, want %q", row, want)
			}
			b.checkKeysNameContent()

			// The next runs skip the pair and do not fail.
			res, err = b.compact(now.Add(time.Minute))
			if err != nil || len(res.Hours) != 0 || len(res.SetAside) != 0 {
				t.Fatalf("run while set aside: %+v %v", res, err)
			}
			retryAt := now.Add(time.Hour)
			if !tt.backfill {
				// At its retry time it is tried again, fails again, and
				// backs off twice as long.
				res, err = b.compact(retryAt)
				if err != nil || len(res.SetAside) != 1 || res.SetAside[0].Attempts != 2 || !res.SetAside[0].RetryAt.Equal(retryAt.Add(2*time.Hour)) {
					t.Fatalf("retry of a still broken pair: %+v %v", res, err)
				}
				retryAt = res.SetAside[0].RetryAt
			}

			// Repair: the object is back (restored, or rewritten by a
			// backfill of the day).
			if err := b.lake.Put(ctx, broken, orig, lake.ParquetContentType); err != nil {
				t.Fatal(err)
			}
			at := retryAt
			if tt.backfill {
				if err := b.wh.ClearSetAsideHours(ctx, b.topic, h11, h11.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				at = now.Add(2 * time.Minute) // no need to wait for the retry
			}
			res, err = b.compact(at)
			if err != nil || len(res.Hours) != 1 || !res.Hours[0].Hour.Equal(h11) || res.Hours[0].Partition != 0 || len(res.SetAside) != 0 {
				t.Fatalf("run after the repair: %+v %v", res, err)
			}
			if n := b.count(`SELECT count(*) FROM pipeline.silver_set_aside`); n != 0 {
				t.Errorf("%d pairs still set aside after the repair", n)
			}
			b.checkLake(b.total, b.ex.Distinct, true)
			b.checkKeysNameContent()
		})
	}
}

// TestCompactHoursTransientFails: an error that a retry can fix (S3 down)
// fails the run, for Temporal to retry it, and sets nothing aside.
func TestCompactHoursTransientFails(t *testing.T) {
	b := newBrokenStack(t)
	now := b.hours[2].Add(2 * time.Hour)
	b.s3.Stop()
	res, err := b.compact(now)
	if err == nil {
		t.Fatalf("compaction with S3 down succeeded: %+v", res)
	}
	if n := b.count(`SELECT count(*) FROM pipeline.silver_set_aside`); n != 0 {
		t.Fatalf("%d pairs set aside for a transient error: %v", n, err)
	}
	b.s3.Start(t)
	if res, err = b.compact(now); err != nil || len(res.Hours) != 6 || len(res.SetAside) != 0 {
		t.Fatalf("after S3 is back: %+v %v", res, err)
	}
	b.checkLake(b.total, b.ex.Distinct, true)
}
