package warehouse

import (
	"context"
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
