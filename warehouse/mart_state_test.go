package warehouse

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// resetMarts empties gold, the marts and their state, and the settings.
func resetMarts(t *testing.T) {
	t.Helper()
	reset(t)
	if _, err := store.Pool().Exec(context.Background(), `TRUNCATE pipeline.mart_days, pipeline.settings`); err != nil {
		t.Fatal(err)
	}
}

// pendingDays lists the pending days as "day state".
func pendingDays(t *testing.T) []string {
	t.Helper()
	days, total, err := store.PendingMartDays(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, d := range days {
		out = append(out, d.Day.String()+" "+d.State)
	}
	if int(total) != len(out) {
		t.Fatalf("total %d, listed %d", total, len(out))
	}
	slices.Sort(out)
	return out
}

func build(t *testing.T, d string, loc *time.Location) {
	t.Helper()
	if _, err := store.BuildMarts(context.Background(), day(d), loc); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, rows ...event.Row) LoadResult {
	t.Helper()
	res, err := store.LoadLive(context.Background(), LoadInput{Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestOccurredHours(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   []string
		want []string
	}{
		{"none", nil, nil},
		{"one hour", []string{"2026-11-24T14:05:09Z", "2026-11-24T14:59:59.999999Z", "2026-11-24T14:00:00Z"}, []string{"2026-11-24T14:00:00Z"}},
		{"unsorted, repeated", []string{"2026-11-24T15:00:00Z", "2026-11-23T01:30:00Z", "2026-11-24T15:10:00Z", "2026-11-23T01:00:00Z"},
			[]string{"2026-11-23T01:00:00Z", "2026-11-24T15:00:00Z"}},
		{"before 1970", []string{"1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z"}, []string{"1969-12-31T23:00:00Z", "1970-01-01T00:00:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rows []event.Row
			for _, a := range tc.at {
				rows = append(rows, event.Row{OccurredAt: micros(a)})
			}
			var got []string
			for _, h := range occurredHours(rows) {
				got = append(got, h.Format(time.RFC3339))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMartsPending follows built days through gold writes, rebuilds and
// zone changes.
func TestMartsPending(t *testing.T) {
	ctx := context.Background()
	kolkata := zone(t, "Asia/Kolkata") // UTC+5:30: days start at 18:30Z
	for _, tc := range []struct {
		name  string
		zone  string             // recorded mart zone ("" none)
		built []string           // days built first, in the recorded zone
		write func(t *testing.T) // what changes gold afterwards
		want  []string           // pending days
		after func(t *testing.T) // optional further checks
	}{
		{
			name: "late event of a built day", built: []string{"2026-11-23", "2026-11-24"},
			write: func(t *testing.T) { load(t, ev(1, "page_view", "2026-11-24T23:59:59Z", "u1", "")) },
			want:  []string{"2026-11-24 dirty"},
			after: func(t *testing.T) {
				build(t, "2026-11-24", nil)
				if p := pendingDays(t); len(p) != 0 {
					t.Fatalf("pending after the rebuild: %v", p)
				}
				check(t, "rebuilt", query(t, productRows, "2026-11-24"), []string{"page_view | 1 | 1"})
			},
		},
		{
			name: "a day never built is not tracked", built: []string{"2026-11-23"},
			write: func(t *testing.T) { load(t, ev(1, "page_view", "2026-11-24T10:00:00Z", "u1", "")) },
			want:  []string{},
		},
		{
			name: "duplicates change nothing", built: []string{"2026-11-24"},
			write: func(t *testing.T) {
				resetMarts(t)
				load(t, ev(1, "page_view", "2026-11-24T10:00:00Z", "u1", ""))
				build(t, "2026-11-24", nil)
				if res := load(t, ev(1, "page_view", "2026-11-24T10:00:00Z", "u1", "")); res.Inserted != 0 {
					t.Fatalf("inserted %d", res.Inserted)
				}
			},
			want: []string{},
		},
		{
			// 18:10Z is 23:40 on the 24th in Kolkata; its UTC hour also
			// overlaps the 25th, which is marked too (a spare rebuild).
			name: "half-hour zone: overlap, not equality", zone: "Asia/Kolkata", built: []string{"2026-11-23", "2026-11-24", "2026-11-25"},
			write: func(t *testing.T) { load(t, ev(1, "page_view", "2026-11-24T18:10:00Z", "u1", "")) },
			want:  []string{"2026-11-24 dirty", "2026-11-25 dirty"},
		},
		{
			name: "a range", built: []string{"2026-11-22", "2026-11-23", "2026-11-24"},
			write: func(t *testing.T) {
				err := pgx.BeginFunc(ctx, store.Pool(), func(tx pgx.Tx) error {
					return markMartsStaleRange(ctx, tx, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"2026-11-23 dirty"},
		},
		{
			name: "a rebuild that died after its claim", built: []string{"2026-11-24"},
			write: func(t *testing.T) {
				conn, err := store.Pool().Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Release()
				start, end := day("2026-11-24").Bounds(time.UTC)
				if _, err := claimMartDay(ctx, conn.Conn(), day("2026-11-24"), time.UTC, start, end); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"2026-11-24 rebuilding"},
		},
		{
			name: "zone changed", built: []string{"2026-11-23", "2026-11-24"},
			write: func(t *testing.T) {
				if z, err := store.SetMartZone(ctx, "Asia/Tokyo"); err != nil || z != "Asia/Tokyo" {
					t.Fatalf("SetMartZone: %q, %v", z, err)
				}
				if z, err := store.SetMartZone(ctx, ""); err != nil || z != "Asia/Tokyo" {
					t.Fatalf("SetMartZone(\"\") = %q, %v: want the recorded zone kept", z, err)
				}
			},
			want: []string{"2026-11-23 zone", "2026-11-24 zone"},
			after: func(t *testing.T) {
				res, err := store.BuildMartsOverlapping(ctx, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range res {
					got = append(got, r.Day.String()+" "+r.Zone)
				}
				// The UTC 23rd is 09:00 on the 23rd to 09:00 on the 24th in Tokyo.
				check(t, "rebuilt", got, []string{"2026-11-23 Asia/Tokyo", "2026-11-24 Asia/Tokyo"})
				check(t, "pending", pendingDays(t), []string{})
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetMarts(t)
			loc := time.UTC
			if tc.zone != "" {
				if _, err := store.SetMartZone(ctx, tc.zone); err != nil {
					t.Fatal(err)
				}
				loc = kolkata
			}
			for _, d := range tc.built {
				build(t, d, loc)
			}
			check(t, "pending after the builds", pendingDays(t), []string{})
			tc.write(t)
			check(t, "pending", pendingDays(t), tc.want)
			if tc.after != nil {
				tc.after(t)
			}
		})
	}
}

func TestMartZone(t *testing.T) {
	resetMarts(t)
	ctx := context.Background()
	if loc, err := store.MartZone(ctx); err != nil || loc != time.UTC {
		t.Fatalf("default zone %v, %v; want UTC", loc, err)
	}
	for _, bad := range []string{"Mars/Olympus", "Local"} {
		var ie *InputError
		if _, err := store.SetMartZone(ctx, bad); !errors.As(err, &ie) {
			t.Fatalf("SetMartZone(%q): %v, want an InputError", bad, err)
		}
	}
	if _, err := store.SetMartZone(ctx, "Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	if loc, err := store.MartZone(ctx); err != nil || loc.String() != "Europe/Berlin" {
		t.Fatalf("zone %v, %v", loc, err)
	}
	if _, err := store.BuildMartsOverlapping(ctx, time.Now(), time.Now().Add(-time.Hour)); err == nil {
		t.Fatal("an empty range was accepted")
	}
}
