// Package silvertest sets up and reads silver.events, the Iceberg table,
// for tests that run the stream or a backfill against real components.
package silvertest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/silver"
)

// Table creates the catalog's tables and silver.events on the database at
// dbURL and the lake bucket of s3, as provisioning does, and returns the
// configuration workers open the catalog with.
func Table(t testing.TB, dbURL string, s3 *streamtest.S3, bucket string) silver.Config {
	t.Helper()
	cfg := silver.Config{DatabaseURL: dbURL, Bucket: bucket, Endpoint: s3.Endpoint, AccessKeyID: s3.AccessKeyID,
		SecretAccessKey: s3.SecretAccessKey}
	if _, _, err := silver.Provision(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// scan reads fields of every row of the table's current snapshot, one
// record batch at a time.
func scan(t testing.TB, cfg silver.Config, fields []string, each func(arrow.RecordBatch)) {
	t.Helper()
	ctx := context.Background()
	c, err := silver.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tbl, err := c.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.CurrentSnapshot() == nil {
		return
	}
	at, err := tbl.Scan(table.WithSelectedFields(fields...)).ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scan silver.events: %v", err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		each(tr.RecordBatch())
	}
}

// IDs reads every event_id of the table's current snapshot, with how many
// rows carry it.
func IDs(t testing.TB, cfg silver.Config) map[string]int {
	t.Helper()
	out := map[string]int{}
	scan(t, cfg, []string{"event_id"}, func(rec arrow.RecordBatch) {
		col := rec.Column(0).(*array.String)
		for i := range col.Len() {
			out[col.Value(i)]++
		}
	})
	return out
}

// CheckSameAsGold fails the test unless silver.events holds every event id
// of gold.events exactly once, and no other: the promise that silver and
// gold agree for every reader. It waits up to wait for silver to catch up
// (it trails gold by a few seconds).
func CheckSameAsGold(t testing.TB, pool *pgxpool.Pool, cfg silver.Config, wait time.Duration) {
	t.Helper()
	ctx := context.Background()
	var diff []string
	for deadline := time.Now().Add(wait); ; time.Sleep(500 * time.Millisecond) {
		gold := map[string]bool{}
		rows, err := pool.Query(ctx, "SELECT event_id::text FROM gold.events")
		if err != nil {
			t.Fatal(err)
		}
		var id string
		if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { gold[id] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		sil := IDs(t, cfg)
		diff = diff[:0]
		for id, n := range sil {
			if n != 1 {
				diff = append(diff, fmt.Sprintf("%s %d times in silver", id, n))
			}
			if !gold[id] {
				diff = append(diff, id+" in silver, not in gold")
			}
		}
		for id := range gold {
			if sil[id] == 0 {
				diff = append(diff, id+" in gold, not in silver")
			}
		}
		if len(diff) == 0 {
			t.Logf("silver.events holds the %d event ids of gold.events, each once", len(gold))
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	sort.Strings(diff)
	t.Errorf("silver.events differs from gold.events in %d ways, e.g. %v", len(diff), diff[:min(len(diff), 10)])
}

// Lineage reads, for each of ids that silver.events holds, where each of
// its rows came from ("partition/offset") and its properties.
func Lineage(t testing.TB, cfg silver.Config, ids ...string) map[string][]string {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string][]string{}
	scan(t, cfg, []string{"event_id", "kafka_partition", "kafka_offset", "properties"}, func(rec arrow.RecordBatch) {
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		idc, pc, oc, prc := col("event_id").(*array.String), col("kafka_partition").(*array.Int32), col("kafka_offset").(*array.Int64), col("properties").(*array.String)
		for i := range idc.Len() {
			if id := idc.Value(i); want[id] {
				out[id] = append(out[id], fmt.Sprintf("%d/%d %s", pc.Value(i), oc.Value(i), prc.Value(i)))
			}
		}
	})
	return out
}

// Incarnations reads, for every event id of silver.events, the topic
// incarnation of each of its rows.
func Incarnations(t testing.TB, cfg silver.Config) map[string][]int32 {
	t.Helper()
	out := map[string][]int32{}
	scan(t, cfg, []string{"event_id", "kafka_incarnation"}, func(rec arrow.RecordBatch) {
		ids := rec.Column(rec.Schema().FieldIndices("event_id")[0]).(*array.String)
		incs := rec.Column(rec.Schema().FieldIndices("kafka_incarnation")[0]).(*array.Int32)
		for i := range ids.Len() {
			out[ids.Value(i)] = append(out[ids.Value(i)], incs.Value(i))
		}
	})
	return out
}

// Stats summarizes silver.events from its metadata (silver.Catalog.Stats).
func Stats(t testing.TB, cfg silver.Config) silver.Stats {
	t.Helper()
	c, err := silver.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}
