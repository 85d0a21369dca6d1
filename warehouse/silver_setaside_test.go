package warehouse

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func resetSilver(t *testing.T) {
	t.Helper()
	resetLakeIndex(t)
	if _, err := store.Pool().Exec(context.Background(), `TRUNCATE pipeline.silver_set_aside`); err != nil {
		t.Fatal(err)
	}
}

// TestSilverNeverRevived: a key recorded as replaced or deleted is never made
// live again, by ReplaceSilver (a backfill rerun or a late compaction writing
// a key that compaction already retired) or by RecordSilver; a key recorded
// live is updated (a retry writing the same key).
func TestSilverNeverRevived(t *testing.T) {
	ctx := context.Background()
	h := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	obj := func(key string, first, last int64) SilverObject {
		return SilverObject{Key: key, Hour: h, Topic: "events", Partition: 0, First: first, Last: last, Rows: last - first + 1, Bytes: 100}
	}
	for _, tt := range []struct {
		name    string
		state   string // of the output's key before the write
		refused bool
	}{
		{"live key: a retry, updated", "live", false},
		{"replaced key: refused", "replaced", true},
		{"deleted key: refused", "deleted", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resetSilver(t)
			// out was written once, then (in the refused cases) merged into
			// merged by compaction, and its object deleted or about to be.
			out, merged, small := obj("s/out", 0, 19), obj("s/merged", 0, 29), obj("s/small", 20, 29)
			if err := store.RecordSilver(ctx, []SilverObject{small}); err != nil {
				t.Fatal(err)
			}
			if err := store.ReplaceSilver(ctx, []SilverObject{out}, nil, nil); err != nil {
				t.Fatal(err)
			}
			if tt.state != "live" {
				if err := store.ReplaceSilver(ctx, []SilverObject{merged}, []string{"s/out", "s/small"}, nil); err != nil {
					t.Fatal(err)
				}
				if tt.state == "deleted" {
					if err := store.MarkSilverDeleted(ctx, []string{"s/out", "s/small"}); err != nil {
						t.Fatal(err)
					}
				}
				// A fresh stream file to replace, so that only the output's
				// state makes the swap fail.
				small = obj("s/small2", 30, 39)
				if err := store.RecordSilver(ctx, []SilverObject{small}); err != nil {
					t.Fatal(err)
				}
			}

			// A rerun writes out again (with more rows) and replaces small.
			again := out
			again.Rows, again.Bytes = 25, 120
			err := store.ReplaceSilver(ctx, []SilverObject{again}, []string{small.Key}, nil)
			st, serr := store.SilverStates(ctx, []string{"s/out", small.Key})
			if serr != nil {
				t.Fatal(serr)
			}
			var retired *RetiredSilverError
			if !tt.refused {
				if err != nil || st["s/out"] != "live" || st[small.Key] != "replaced" {
					t.Fatalf("retry of a live key: %v, states %v", err, st)
				}
				if n := query(t, `SELECT rows FROM pipeline.silver_objects WHERE object_key = 's/out'`); !slices.Equal(n, []string{"25"}) {
					t.Fatalf("rows of the rewritten key: %v", n)
				}
				return
			}
			if !errors.Is(err, ErrSilverChanged) || !errors.As(err, &retired) || len(retired.Retired) != 1 ||
				retired.Retired[0].Key != "s/out" || retired.Retired[0].State != tt.state {
				t.Fatalf("revive of a %s key: got %v, want a RetiredSilverError naming s/out", tt.state, err)
			}
			// Nothing of the swap was committed.
			if st["s/out"] != tt.state || st[small.Key] != "live" {
				t.Fatalf("after the refused swap: states %v", st)
			}
			// RecordSilver refuses it too; a live key in the same call is
			// a retry and fine, a new one is recorded.
			err = store.RecordSilver(ctx, []SilverObject{small, out, obj("s/new", 40, 49)})
			if !errors.Is(err, ErrSilverChanged) || !errors.As(err, &retired) || retired.Retired[0].Key != "s/out" {
				t.Fatalf("RecordSilver of a %s key: %v", tt.state, err)
			}
			st, _ = store.SilverStates(ctx, []string{"s/out", "s/new"})
			if st["s/out"] != tt.state || st["s/new"] != "live" {
				t.Fatalf("after RecordSilver: states %v", st)
			}
		})
	}
}

// TestSetAsideHours: a set-aside pair leaves DirtySilverHours until its
// retry_at (by the compaction's clock), backs off on each further failure,
// and is cleared by a backfill of its topic and hours or by a success.
func TestSetAsideHours(t *testing.T) {
	resetSilver(t)
	ctx := context.Background()
	h10 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	h11 := h10.Add(time.Hour)
	var small []SilverObject
	for _, h := range []time.Time{h10, h11} {
		for p := int32(0); p < 2; p++ {
			small = append(small, SilverObject{Key: h.Format("s/15/") + string(rune('0'+p)), Hour: h, Topic: "events", Partition: p, Last: 9, Rows: 1})
		}
	}
	if err := store.RecordSilver(ctx, small); err != nil {
		t.Fatal(err)
	}
	now := h11.Add(3 * time.Hour)
	dirty := func(at time.Time) []SilverPartitionHour {
		t.Helper()
		d, err := store.DirtySilverHours(ctx, now, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := dirty(now); len(d) != 4 {
		t.Fatalf("dirty before: %v", d)
	}

	got, err := store.SetAsideSilverHour(ctx, SetAsideHour{Hour: h10, Partition: 1, Topic: "events", ErrorType: "SilverMissing",
		Reason: "silver file s/10/1 is live but missing from the bucket", Key: "s/10/1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 1 || !got.RetryAt.Equal(now.Add(SetAsideRetryMin)) || got.Key != "s/10/1" || got.Since.IsZero() {
		t.Fatalf("set aside: %+v", got)
	}
	if _, err := store.SetAsideSilverHour(ctx, SetAsideHour{Hour: h10, Partition: 1}, now); err == nil {
		t.Fatal("set aside without a reason accepted")
	}
	want := []SilverPartitionHour{{Hour: h10, Partition: 0}, {Hour: h11, Partition: 0}, {Hour: h11, Partition: 1}}
	if d := dirty(now); !slices.Equal(d, want) {
		t.Fatalf("dirty while set aside:\n got %v\nwant %v", d, want)
	}
	// Due again at retry_at, marked as a retry.
	if d := dirty(got.RetryAt); len(d) != 4 || d[1] != (SilverPartitionHour{Hour: h10, Partition: 1, SetAside: true}) {
		t.Fatalf("dirty at retry_at: %v", d)
	}

	// It fails again: one more attempt, twice the back-off, same Since.
	again, err := store.SetAsideSilverHour(ctx, SetAsideHour{Hour: h10, Partition: 1, Topic: "events", ErrorType: "SilverCorrupt",
		Reason: "corrupt"}, got.RetryAt)
	if err != nil {
		t.Fatal(err)
	}
	if again.Attempts != 2 || !again.RetryAt.Equal(got.RetryAt.Add(2*SetAsideRetryMin)) || !again.Since.Equal(got.Since) ||
		again.Reason != "corrupt" || again.Key != "" {
		t.Fatalf("set aside again: %+v (first %+v)", again, got)
	}
	// The back-off stops at SetAsideRetryMax.
	for range 10 {
		if again, err = store.SetAsideSilverHour(ctx, again, now); err != nil {
			t.Fatal(err)
		}
	}
	if !again.RetryAt.Equal(now.Add(SetAsideRetryMax)) {
		t.Fatalf("back-off after %d attempts: retry at %s", again.Attempts, again.RetryAt)
	}

	if _, err := store.SetAsideSilverHour(ctx, SetAsideHour{Hour: h11, Partition: 0, Topic: "events", ErrorType: "SilverMissing", Reason: "missing"}, now); err != nil {
		t.Fatal(err)
	}
	if n, err := store.CountSetAsideHours(ctx); err != nil || n != 2 {
		t.Fatalf("count: %d %v", n, err)
	}
	list, err := store.SetAsideHours(ctx, 10)
	if err != nil || len(list) != 2 || !list[0].Hour.Equal(h10) || list[0].Partition != 1 || list[1].Reason != "missing" {
		t.Fatalf("list: %+v %v", list, err)
	}

	// A backfill of another topic, or of other hours, clears nothing; one
	// of the topic and hour 10 clears hour 10.
	for _, c := range []struct {
		topic    string
		from, to time.Time
		left     int64
	}{
		{"other", h10, h11.Add(time.Hour), 2},
		{"events", h11.Add(time.Hour), h11.Add(2 * time.Hour), 2},
		{"events", h10, h11, 1},
	} {
		if err := store.ClearSetAsideHours(ctx, c.topic, c.from, c.to); err != nil {
			t.Fatal(err)
		}
		if n, _ := store.CountSetAsideHours(ctx); n != c.left {
			t.Fatalf("after clearing %s %s..%s: %d left, want %d", c.topic, c.from, c.to, n, c.left)
		}
	}
	// A success clears the other.
	if was, err := store.ClearSetAsideHour(ctx, h11, 0); err != nil || !was {
		t.Fatalf("clear one: %v %v", was, err)
	}
	if was, err := store.ClearSetAsideHour(ctx, h11, 0); err != nil || was {
		t.Fatalf("clear one again: %v %v", was, err)
	}
	if d := dirty(now); len(d) != 4 {
		t.Fatalf("dirty after clearing: %v", d)
	}

	// A pair with nothing left to compact (its files retired or compacted
	// by someone else) is pruned; one with work left stays.
	for _, p := range []int32{0, 1} {
		if _, err := store.SetAsideSilverHour(ctx, SetAsideHour{Hour: h10, Partition: p, Topic: "events", ErrorType: "SilverMissing", Reason: "missing"}, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.ReplaceSilver(ctx, nil, nil, []string{small[0].Key}); err != nil { // hour 10 partition 0
		t.Fatal(err)
	}
	if n, err := store.PruneSetAsideHours(ctx); err != nil || n != 1 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	if list, _ := store.SetAsideHours(ctx, 10); len(list) != 1 || list[0].Partition != 1 {
		t.Fatalf("after pruning: %+v", list)
	}
}
