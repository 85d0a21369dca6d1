package silver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/acme/pipeline/lake"
)

// ids reads the table's event ids through a scan, with how often each occurs.
func ids(t *testing.T, tbl *table.Table, opts ...table.ScanOption) map[string]int {
	t.Helper()
	at, err := tbl.Scan(append(opts, table.WithSelectedFields("event_id"))...).ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	out := map[string]int{}
	for _, ch := range at.Column(0).Data().Chunks() {
		col := ch.(*array.String)
		for i := range col.Len() {
			out[col.Value(i)]++
		}
	}
	return out
}

// files counts the table's live data files.
func files(t *testing.T, tbl *table.Table) int {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}

// TestMaintenance: thirty small appends over two closed hours and an open
// one are compacted while a stream shard keeps appending; every reader of
// every retained snapshot reads each id once; the closed hours end in one
// file each, the open hour is left alone; manifests are rewritten; expiry
// drops the old snapshots and the files only they referenced; orphan
// cleanup deletes a stray file under data/ but not the pre-Iceberg hour
// files beside the table.
func TestMaintenance(t *testing.T) {
	ctx := context.Background()
	c, cfg := newCatalog(t)
	if _, err := c.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for l := range 30 {
		if _, err := c.Append(ctx, rows(40, start.Add(time.Duration(l%3)*time.Hour/3), 1, int64(l*40)), Commit{LoadIDs: []int64{int64(l + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ids(t, before)
	if len(want) != 1200 || files(t, before) < 60 {
		t.Fatalf("before compaction: %d ids, %d files", len(want), files(t, before))
	}

	// A shard appends to the open hour (12:00) while compaction runs.
	late := rows(10, start.Add(2*time.Hour+30*time.Minute), 2, 0)
	var wg sync.WaitGroup
	wg.Go(func() {
		other, err := Open(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer other.Close()
		for i := range 5 {
			if _, err := other.Append(ctx, late[i*2:i*2+2], Commit{LoadIDs: []int64{int64(100 + i)}}); err != nil {
				t.Error(err)
			}
		}
	})
	res, err := c.Compact(ctx, CompactOptions{Before: start.Add(2 * time.Hour)})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups != 2 || res.FilesAdded != 2 || res.More {
		t.Fatalf("compaction of hours 10 and 11: %+v", res)
	}
	for _, r := range late {
		want[uuid.UUID(r.EventID).String()] = 1
	}
	after, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, "after compaction", ids(t, after), want)
	checkIDs(t, "time travel to before compaction", ids(t, after, table.WithSnapshotID(before.CurrentSnapshot().SnapshotID)), ids(t, before))
	st := statsOf(after)
	if st.Rows != int64(len(want)) || st.Files != int64(files(t, after)) || st.LastAppend == nil || !strings.HasPrefix(st.LastAppend.Loads, "10") {
		t.Fatalf("stats after compaction: %+v (last append %+v)", st, st.LastAppend)
	}

	if b, a, err := c.RewriteManifests(ctx, 1); err != nil || a > b {
		t.Fatalf("rewrite manifests: %d → %d, %v", b, a, err)
	}

	// A stray file of a failed commit, and a pre-Iceberg hour file.
	lk, err := lake.New(lake.Config{Endpoint: cfg.Endpoint, Region: "us-east-1", AccessKeyID: cfg.AccessKeyID,
		SecretAccessKey: cfg.SecretAccessKey, Bucket: cfg.Bucket, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	stray, old := "silver/events/data/occurred_at_hour=2026-11-30-10/stray.parquet", "silver/events/dt=2026-11-30/hour=10/old.parquet"
	for _, k := range []string{stray, old} {
		if err := lk.Put(ctx, k, []byte("x"), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // object times have one-second precision

	ex, err := c.ExpireSnapshots(ctx, ExpireOptions{Keep: time.Millisecond, RetainLast: 1})
	if err != nil || ex.After != 1 || ex.Before < 30 {
		t.Fatalf("expire: %+v %v", ex, err)
	}
	n, _, err := c.DeleteOrphans(ctx, time.Second)
	if err != nil || n < 1 {
		t.Fatalf("orphans: %d deleted, %v", n, err)
	}
	if _, err := lk.Get(ctx, stray); err == nil {
		t.Fatal("the stray data file is still there")
	}
	if _, err := lk.Get(ctx, old); err != nil {
		t.Fatalf("the pre-Iceberg hour file is gone: %v", err)
	}
	final, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, "after expiry and orphan cleanup", ids(t, final), want)
	keys, err := lk.List(ctx, "silver/events/data/")
	if err != nil {
		t.Fatal(err)
	}
	if live := files(t, final); len(keys) != live {
		t.Fatalf("%d objects under data/, %d live files: expiry left replaced files behind", len(keys), live)
	}
}

// checkIDs fails unless got holds exactly want's ids, each once.
func checkIDs(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	for id, n := range got {
		if n != 1 || want[id] == 0 {
			t.Fatalf("%s: id %s read %d times (expected: %v)", what, id, n, want[id] > 0)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d ids, want %d", what, len(got), len(want))
	}
}
