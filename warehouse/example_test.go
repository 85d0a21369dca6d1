package warehouse_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/warehouse"
)

// A worker's start-up, one live load of the stream, and a nightly aggregation.
func Example() {
	ctx := context.Background()
	url := os.Getenv("DATABASE_URL") // postgres://postgres@127.0.0.1:5432/pipeline?sslmode=disable
	if err := warehouse.EnsureDatabase(ctx, url); err != nil {
		log.Fatal(err)
	}
	store, err := warehouse.Open(ctx, warehouse.Config{URL: url})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil { // safe when several workers start at once
		log.Fatal(err)
	}

	// Where the stream resumes partition 0.
	offsets, err := store.StreamOffsets(ctx, "events")
	if err != nil {
		log.Fatal(err)
	}
	next := offsets[0]

	// Rows read from one bronze object (offsets next..next+len-1 of partition 0).
	var rows []event.Row
	res, err := store.LoadLive(ctx, warehouse.LoadInput{
		Rows:    rows,
		Sources: []string{"bronze/events/..."},
		Topic:   "events",
		Offsets: map[int32]int64{0: next + int64(len(rows))},
	})
	if err != nil {
		// In an activity: IsPermanent errors are non-retryable, others retry.
		log.Fatalf("permanent=%v: %v", warehouse.IsPermanent(err), err)
	}
	log.Printf("load %d: %d new, %d duplicates", res.LoadID, res.Inserted, res.Duplicates)

	// NightlyAggregation for yesterday, in UTC.
	yesterday := warehouse.DayOf(time.Now().UTC()).AddDays(-1)
	if _, err := store.BuildMarts(ctx, yesterday, time.UTC); err != nil {
		log.Fatal(err)
	}
}

// A backfill replaces whole days: readers see the old rows until the commit.
func ExampleStore_ReplaceDays() {
	ctx := context.Background()
	store, err := warehouse.Open(ctx, warehouse.Config{URL: os.Getenv("DATABASE_URL")})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	day, _ := warehouse.ParseDay("2026-11-24")
	silverRows := func(yield func(event.Row, error) bool) {
		// Read silver/events/dt=2026-11-24/hour=*/... and yield every row;
		// yield an error to abort the whole replacement.
	}
	res, err := store.ReplaceDays(ctx, warehouse.ReplaceInput{
		From: day, To: day, Loc: time.UTC,
		Rows:    silverRows,
		Sources: []string{"silver/events/dt=2026-11-24/"},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("replaced %s: %d rows out, %d rows in", day, res.Deleted, res.Inserted)
}
