package silver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
)

// newCatalog starts versitygw (with object metadata: multipart uploads need
// it) and a fresh database, and opens the catalog on them as provisioning
// does.
func newCatalog(t *testing.T) (*Catalog, Config) {
	t.Helper()
	s3 := streamtest.StartS3WithMetadata(t)
	lk, err := lake.New(s3.LakeConfig("datalake"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, dbURL := streamtest.Database(t)
	cfg := Config{DatabaseURL: dbURL, Bucket: "datalake", Endpoint: s3.Endpoint, AccessKeyID: s3.AccessKeyID,
		SecretAccessKey: s3.SecretAccessKey, CreateCatalogTables: true}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cfg
}

// rows makes n page views over the two hours from start, on one partition.
func rows(n int, start time.Time, p int32, first int64) []event.Row {
	out := make([]event.Row, n)
	for i := range out {
		at := start.Add(time.Duration(i) * 2 * time.Hour / time.Duration(n))
		out[i] = event.Row{EventID: uuid.New(), Type: "page_view", OccurredAt: at.UnixMicro(), ReceivedAt: at.UnixMicro(),
			Properties: "{}", Partition: p, Offset: first + int64(i)}
	}
	out[0].Type, out[0].AmountMicros, out[0].Currency = "payment.succeeded", 12_340_000, "EUR"
	return out
}

// count reads the table back through a scan, filtered when f is given.
func count(t *testing.T, tbl *table.Table, opts ...table.ScanOption) int64 {
	t.Helper()
	at, err := tbl.Scan(append(opts, table.WithSelectedFields("event_id"))...).ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	return at.NumRows()
}

// TestEnsureAndAppend: provisioning creates the table once; an append
// carries its loads and offsets in the snapshot; a retry of the same loads
// (an attempt that committed, then failed before it said so) appends
// nothing; an hour's filtered scan reads that hour's rows only.
func TestEnsureAndAppend(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	for i, want := range []bool{true, false} {
		created, err := c.Ensure(ctx)
		if err != nil || created != want {
			t.Fatalf("Ensure #%d: created %v, %v; want %v", i+1, created, err, want)
		}
	}
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	rs := rows(1000, start, 3, 5000)
	commit := Commit{LoadIDs: []int64{42, 41}, Offsets: map[string][2]int64{"1/3": {5000, 5999}}}
	first, err := c.Append(ctx, rs, commit)
	if err != nil || !first.Appended {
		t.Fatalf("append: %+v %v", first, err)
	}
	again, err := c.Append(ctx, rs, Commit{LoadIDs: []int64{41, 42}})
	if err != nil || again.Appended || again.SnapshotID != first.SnapshotID {
		t.Fatalf("the retry appended again or found another snapshot: %+v %v (first %+v)", again, err, first)
	}
	tbl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := tbl.CurrentSnapshot()
	if snap.Summary.Properties[PropLoads] != "41,42" || snap.Summary.Properties[PropOffsets] != `{"1/3":[5000,5999]}` {
		t.Fatalf("snapshot summary %v", snap.Summary.Properties)
	}
	if n := count(t, tbl); n != 1000 {
		t.Fatalf("table holds %d rows, want 1000", n)
	}
	hour := iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference("occurred_at"), iceberg.Timestamp(start.UnixMicro())),
		iceberg.LessThan(iceberg.Reference("occurred_at"), iceberg.Timestamp(start.Add(time.Hour).UnixMicro())))
	if n := count(t, tbl, table.WithRowFilter(hour)); n != 500 {
		t.Fatalf("hour 10 holds %d rows, want 500", n)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("%d files (%v), want one per hour", len(tasks), err)
	}
}

// TestConcurrentShards: four shards, each with its own catalog handle,
// append ten loads each at once. The SQL catalog reports lost races in a
// way iceberg-go does not retry by itself; every append must still commit
// exactly once, and the table hold exactly every row.
func TestConcurrentShards(t *testing.T) {
	ctx := context.Background()
	c, cfg := newCatalog(t)
	if _, err := c.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	const shards, loads, per = 4, 10, 50
	var wg sync.WaitGroup
	errs := make(chan error, shards)
	for s := range shards {
		wg.Go(func() {
			cs, err := Open(cfg)
			if err != nil {
				errs <- err
				return
			}
			defer cs.Close()
			for l := range loads {
				id := int64(s*100 + l)
				if _, err := cs.Append(ctx, rows(per, start, int32(s), int64(l*per)), Commit{LoadIDs: []int64{id}}); err != nil {
					errs <- fmt.Errorf("shard %d load %d: %w", s, l, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tbl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, tbl); n != shards*loads*per {
		t.Fatalf("table holds %d rows, want %d", n, shards*loads*per)
	}
	appends := 0
	for _, s := range table.AncestorsOf(tbl.CurrentSnapshot().SnapshotID, tbl.Metadata().SnapshotByID) {
		if s.Summary != nil && s.Summary.Properties[PropLoads] != "" {
			appends++
		}
	}
	if appends != shards*loads {
		t.Fatalf("%d append snapshots, want %d", appends, shards*loads)
	}
}
