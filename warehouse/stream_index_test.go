package warehouse

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func resetLakeIndex(t *testing.T) {
	t.Helper()
	_, err := store.Pool().Exec(context.Background(), `TRUNCATE pipeline.bronze_objects, pipeline.silver_objects, pipeline.quarantine`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestBronzeIndex(t *testing.T) {
	resetLakeIndex(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)
	h := at.Truncate(time.Hour)
	if _, ok, err := store.BronzeAt(ctx, "events", 1, 3, 1000); ok || err != nil {
		t.Fatalf("empty index: %v %v", ok, err)
	}
	first := BronzeObject{Topic: "events", Partition: 3, First: 1000, Last: 1999, Records: 1000, Bytes: 12345,
		Key: "bronze/a", ArrivedAt: at, Cleaned: 998, Quarantined: 2, MinOccurred: at, MaxOccurred: at, EventHours: []time.Time{h}}
	got, err := store.RecordBronze(ctx, first)
	if err != nil || got.Reused {
		t.Fatalf("first record: %+v %v", got, err)
	}
	// A second attempt that read more records loses to the first.
	second := first
	second.Last, second.Records, second.Cleaned, second.Key = 2499, 1500, 1498, "bronze/b"
	got, err = store.RecordBronze(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Reused || got.Key != "bronze/a" || got.Last != 1999 || got.Records != 1000 || !got.ArrivedAt.Equal(at) ||
		len(got.EventHours) != 1 || !got.EventHours[0].Equal(h) || got.Quarantined != 2 {
		t.Fatalf("second record: %+v", got)
	}
	if _, err := store.RecordBronze(ctx, BronzeObject{Key: "x", First: 5, Last: 4, Records: 1}); err == nil {
		t.Fatal("bad object accepted")
	}
	// The topic recreated: its object at the same offset is another
	// object, never the old one's.
	third := second
	third.Incarnation, third.Key = 2, "bronze/c"
	if got, err = store.RecordBronze(ctx, third); err != nil || got.Reused || got.Key != "bronze/c" {
		t.Fatalf("incarnation 2 at the same offset: %+v %v", got, err)
	}
	for inc, want := range map[int]string{0: "bronze/a", 1: "bronze/a", 2: "bronze/c"} {
		if got, ok, err := store.BronzeAt(ctx, "events", inc, 3, 1000); !ok || err != nil || got.Key != want || got.Incarnation != max(inc, 1) {
			t.Fatalf("BronzeAt incarnation %d: %+v %v %v, want %s", inc, got, ok, err, want)
		}
	}
}

func TestSilverIndex(t *testing.T) {
	resetLakeIndex(t)
	ctx := context.Background()
	h1 := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	h2 := h1.Add(time.Hour)
	small := []SilverObject{
		{Key: "s/h1/p0-0-9", Hour: h1, Topic: "events", Partition: 0, First: 0, Last: 9, Rows: 5, Bytes: 100},
		{Key: "s/h1/p0-10-19", Hour: h1, Topic: "events", Partition: 0, First: 10, Last: 19, Rows: 5, Bytes: 100},
		{Key: "s/h1/p1-0-9", Hour: h1, Topic: "events", Partition: 1, First: 0, Last: 9, Rows: 5, Bytes: 100},
		{Key: "s/h2/p0-0-9", Hour: h2, Topic: "events", Partition: 0, First: 0, Last: 9, Rows: 5, Bytes: 100},
	}
	if err := store.RecordSilver(ctx, small); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordSilver(ctx, small[:1]); err != nil { // again: no-op
		t.Fatal(err)
	}
	st, err := store.SilverStates(ctx, []string{"s/h1/p0-0-9", "nope"})
	if err != nil || len(st) != 1 || st["s/h1/p0-0-9"] != "live" {
		t.Fatalf("states %v %v", st, err)
	}
	dirty, err := store.DirtySilverHours(ctx, h2, h2, 10)
	if err != nil || !slices.Equal(dirty, []SilverPartitionHour{{Hour: h1, Partition: 0}, {Hour: h1, Partition: 1}}) {
		t.Fatalf("dirty before h2: %v %v", dirty, err)
	}
	live, err := store.LiveSilver(ctx, h1, 0)
	if err != nil || len(live) != 2 || live[0].Key != "s/h1/p0-0-9" || live[1].Last != 19 {
		t.Fatalf("live: %+v %v", live, err)
	}

	out := SilverObject{Key: "s/h1/p0-0-19", Hour: h1, Topic: "events", Partition: 0, First: 0, Last: 19, Rows: 9, Bytes: 150}
	if err := store.ReplaceSilver(ctx, []SilverObject{out}, []string{"s/h1/p0-0-9", "s/h1/p0-10-19"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.ReplaceSilver(ctx, nil, nil, []string{"s/h1/p1-0-9"}); err != nil {
		t.Fatal(err)
	}
	// A second compaction of the same inputs conflicts.
	err = store.ReplaceSilver(ctx, []SilverObject{out}, []string{"s/h1/p0-0-9"}, nil)
	if !errors.Is(err, ErrSilverChanged) {
		t.Fatalf("want ErrSilverChanged, got %v", err)
	}
	dirty, err = store.DirtySilverHours(ctx, h2.Add(time.Hour), h2, 10)
	if err != nil || !slices.Equal(dirty, []SilverPartitionHour{{Hour: h2, Partition: 0}}) {
		t.Fatalf("dirty after compaction: %v %v", dirty, err)
	}
	between, err := store.LiveSilverBetween(ctx, h1, h2.Add(time.Hour))
	if err != nil || len(between) != 3 || between[0].Key != "s/h1/p0-0-19" || !between[0].Compacted {
		t.Fatalf("between: %+v %v", between, err)
	}
	rep, err := store.ReplacedSilver(ctx, 10)
	if err != nil || len(rep) != 2 {
		t.Fatalf("replaced: %v %v", rep, err)
	}
	if err := store.MarkSilverDeleted(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if rep, _ := store.ReplacedSilver(ctx, 10); len(rep) != 0 {
		t.Fatalf("still replaced: %v", rep)
	}
	got := query(t, `SELECT object_key, state, replaced_by FROM pipeline.silver_objects WHERE partition = 0 AND hour = $1 ORDER BY 1`, h1)
	want := []string{"s/h1/p0-0-19 | live | ∅", "s/h1/p0-0-9 | deleted | [s/h1/p0-0-19]", "s/h1/p0-10-19 | deleted | [s/h1/p0-0-19]"}
	if !slices.Equal(got, want) {
		t.Fatalf("rows\n got %q\nwant %q", got, want)
	}
}

func TestQuarantineIndex(t *testing.T) {
	resetLakeIndex(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)
	qs := []QuarantineEntry{
		{Topic: "events", Partition: 2, Offset: 7, Key: "q/a", Reason: "malformed JSON", Timestamp: at,
			Errors: []map[string]string{{"message": "malformed JSON"}}},
		{Topic: "events", Partition: 2, Offset: 9, Key: "q/a", Reason: "type: is required"},
	}
	for range 2 {
		if err := store.RecordQuarantine(ctx, qs); err != nil {
			t.Fatal(err)
		}
	}
	got := query(t, `SELECT record_offset, reason, errors::text, kafka_timestamp IS NULL FROM pipeline.quarantine ORDER BY 1`)
	want := []string{`7 | malformed JSON | [{"message": "malformed JSON"}] | false`, `9 | type: is required | [] | true`}
	if !slices.Equal(got, want) {
		t.Fatalf("rows\n got %q\nwant %q", got, want)
	}
}
