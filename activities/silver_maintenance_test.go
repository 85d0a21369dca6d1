package activities

import (
	"sync"
	"testing"
	"time"

	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/silver"
)

// TestSilverMaintenanceUnderLoad: the stream loads two hours in many small
// appends; then, while late events of the first hour stream in and a
// backfill rebuilds the day, maintenance compacts the closed hours. The
// compaction, the stream's appends and the backfill's overwrite all commit;
// silver.events ends holding gold's events once each, in fewer files; and
// expiry then leaves one snapshot with the same rows.
func TestSilverMaintenanceUnderLoad(t *testing.T) {
	s := newStack(t, 2)
	h10 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	a, exA := streamtest.Mix(800, 2, h10, 21)
	b, exB := streamtest.Mix(800, 2, h10.Add(time.Hour), 22)
	msgs := append(a, b...)
	streamtest.Produce(t, s.brokers, s.topic, msgs)
	in := CompactCycleInput{Topic: s.topic, MaxRecords: 50, FlushWait: 50 * time.Millisecond, MaxFlushes: 1}
	offsets, _ := s.drain(startOffsets(2), in, len(msgs))

	sm, err := NewSilverMaintainer(SilverMaintainerConfig{Silver: s.silverCfg, Store: s.wh})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	maintain := func(fn, in, out any) {
		env := s.suite.NewTestActivityEnvironment()
		env.RegisterActivity(sm)
		v, err := env.ExecuteActivity(fn, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(out); err != nil {
			t.Fatal(err)
		}
	}
	before := silvertest.Stats(t, s.silverCfg)

	late, exL := streamtest.Mix(200, 2, h10.Add(30*time.Minute), 23)
	streamtest.Produce(t, s.brokers, s.topic, late)
	var wg sync.WaitGroup
	wg.Go(func() {
		cur := offsets
		for range 40 {
			res, err := s.cycle(CompactCycleInput{Topic: in.Topic, Offsets: cur, MaxRecords: in.MaxRecords, FlushWait: in.FlushWait, MaxFlushes: 1})
			if err != nil {
				t.Errorf("stream cycle during maintenance: %v", err)
				return
			}
			cur = res.Offsets
		}
	})
	wg.Go(func() { s.backfillDay(t, h10) })
	var c CompactSilverResult
	maintain(sm.CompactSilver, CompactSilverInput{Now: h10.Add(3 * time.Hour)}, &c)
	wg.Wait()
	t.Logf("compaction during the stream and the backfill: %d commits, %d files replaced by %d", len(c.Commits), c.Removed, c.Added)
	silvertest.CheckSameAsGold(t, s.wh.Pool(), s.silverCfg, 10*time.Second)

	// Afterwards, what the backfill and late appends added is compacted too.
	maintain(sm.CompactSilver, CompactSilverInput{Now: h10.Add(3 * time.Hour)}, &c)
	var ex silver.ExpireResult
	maintain(sm.ExpireSilverSnapshots, ExpireSilverSnapshotsInput{Retention: time.Millisecond, RetainLast: 1}, &ex)
	after := silvertest.Stats(t, s.silverCfg)
	t.Logf("silver.events: %d files, %d snapshots before; %d files, %d snapshots after (expired %d → %d)",
		before.Files, before.Snapshots, after.Files, after.Snapshots, ex.Before, ex.After)
	if after.Files*2 > before.Files || after.Snapshots != 1 {
		t.Errorf("after maintenance: %d files (from %d), %d snapshots; want half the files at most, and one snapshot",
			after.Files, before.Files, after.Snapshots)
	}
	ids := silvertest.IDs(t, s.silverCfg)
	if want := exA.Distinct + exB.Distinct + exL.Distinct; len(ids) != want {
		t.Errorf("silver.events holds %d events, want %d", len(ids), want)
	}
	silvertest.CheckSameAsGold(t, s.wh.Pool(), s.silverCfg, 0)
	if after.Rows != int64(len(ids)) {
		t.Errorf("the snapshot summary counts %d rows, the scan %d", after.Rows, len(ids))
	}
}
