package warehouse

import (
	"context"
	"slices"
	"testing"
	"time"
)

// insertLoad writes a finished row of pipeline.loads and returns its id.
func insertLoad(t *testing.T, kind string, started, finished time.Time, inserted int64) int64 {
	t.Helper()
	var id int64
	err := store.Pool().QueryRow(context.Background(), `INSERT INTO pipeline.loads (kind, rows_inserted, started_at, finished_at)
		VALUES ($1, $2, $3, $4) RETURNING load_id`, kind, inserted, started, finished).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRecentLoads(t *testing.T) {
	reset(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	live1 := insertLoad(t, "live", at, at.Add(time.Second), 3)
	back := insertLoad(t, "backfill", at.Add(time.Minute), at.Add(2*time.Minute), 7)
	live2 := insertLoad(t, "live", at.Add(3*time.Minute), at.Add(3*time.Minute+500*time.Millisecond), 4)

	for _, tc := range []struct {
		name  string
		kind  string
		limit int
		want  []int64
	}{
		{"every kind, newest first", "", 10, []int64{live2, back, live1}},
		{"every kind, limited", "", 2, []int64{live2, back}},
		{"backfills", "backfill", 10, []int64{back}},
		{"live, limited", "live", 1, []int64{live2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := store.RecentLoads(ctx, tc.kind, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, l := range ls {
				got = append(got, l.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("load ids %v, want %v", got, tc.want)
			}
		})
	}
	ls, err := store.RecentLoads(ctx, "live", 1)
	if err != nil || len(ls) != 1 {
		t.Fatalf("%v, %v", ls, err)
	}
	if l := ls[0]; l.Inserted != 4 || l.Duration() != 500*time.Millisecond || l.Started.Location() != time.UTC {
		t.Errorf("%+v (duration %v)", l, l.Duration())
	}
}

func TestLiveThroughput(t *testing.T) {
	reset(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	insertLoad(t, "live", start.Add(-time.Minute), start.Add(-time.Second), 100)                // before the first bucket
	insertLoad(t, "live", start.Add(-time.Minute), start.Add(time.Second), 1)                   // bucket 0, by its finish
	insertLoad(t, "live", start.Add(4*time.Minute), start.Add(6*time.Minute), 2)                // bucket 1
	insertLoad(t, "live", start.Add(6*time.Minute), start.Add(7*time.Minute), 3)                // bucket 1
	insertLoad(t, "backfill", start.Add(6*time.Minute), start.Add(7*time.Minute), 1000)         // not live
	insertLoad(t, "live", start.Add(20*time.Minute), start.Add(20*time.Minute+time.Second), 50) // past the last bucket

	got, err := store.LiveThroughput(ctx, start, 5*time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []InsertedBucket{{start, 1}, {start.Add(5 * time.Minute), 5}, {start.Add(10 * time.Minute), 0}}
	if !slices.Equal(got, want) {
		t.Errorf("buckets %+v, want %+v", got, want)
	}
}
