package warehouse

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// Races between gold writers and mart rebuilds (see mart_state.go).

// waitBlocked waits until n backends of the test database wait for a lock.
func waitBlocked(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) >= int64(n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %d backends waiting for a lock", n)
}

// goldTx opens a gold transaction that wrote event n at `at` and marked its
// hour, as LoadLive does, without committing.
func goldTx(t *testing.T, n int, at string, mark bool) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `INSERT INTO gold.events (event_id, event_type, occurred_at, kafka_partition, kafka_offset, load_id)
		VALUES ($1, 'page_view', $2, 0, $3, 0)`, id(n), at, n); err != nil {
		t.Fatal(err)
	}
	if mark {
		if err := markMartsStale(ctx, tx, occurredHours([]event.Row{{OccurredAt: micros(at)}})); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

func async(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

// TestMartStaleInterleavings pins each interleaving of a gold transaction
// and a rebuild's claim: the rows end up in the marts built, or the day
// stays pending.
func TestMartStaleInterleavings(t *testing.T) {
	ctx := context.Background()
	const d, at = "2026-11-24", "2026-11-24T12:00:00Z"
	buildAsync := func() <-chan error {
		return async(func() error { _, err := store.BuildMarts(ctx, day(d), nil); return err })
	}
	for _, tc := range []struct {
		name        string
		built       bool // the day was built before
		run         func(t *testing.T)
		wantEvents  string // page_view events in the marts
		wantPending []string
	}{
		{
			name: "mark before claim: the build waits and sees the rows", built: true,
			run: func(t *testing.T) {
				g := goldTx(t, 1, at, true)
				done := buildAsync()
				waitBlocked(t, 1)
				if err := g.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			},
			wantEvents: "page_view | 2 | 1", wantPending: []string{},
		},
		{
			// The claim clears dirty and holds the row; a mark with "WHERE
			// NOT dirty" would read the old, dirty version and skip it.
			name: "claim before mark: the day stays pending", built: true,
			run: func(t *testing.T) {
				if _, err := store.Pool().Exec(ctx, `UPDATE pipeline.mart_days SET dirty = true, dirty_since = now()`); err != nil {
					t.Fatal(err)
				}
				claim, err := store.Pool().Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer claim.Rollback(ctx)
				if _, err := claim.Exec(ctx, `UPDATE pipeline.mart_days SET dirty = false, dirty_since = NULL, claimed_at = clock_timestamp()`); err != nil {
					t.Fatal(err)
				}
				g := goldTx(t, 1, at, false)
				marked := async(func() error { return markMartsStale(ctx, g, occurredHours([]event.Row{{OccurredAt: micros(at)}})) })
				waitBlocked(t, 1)
				if err := claim.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				if err := <-marked; err != nil {
					t.Fatal(err)
				}
				if err := g.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			},
			wantEvents: "page_view | 1 | 1", wantPending: []string{d + " dirty"},
		},
		{
			name: "first build waits for a load that marked nothing yet",
			run: func(t *testing.T) {
				g := goldTx(t, 1, at, true) // no row to mark: only the table lock
				done := buildAsync()
				waitBlocked(t, 1)
				if err := g.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			},
			wantEvents: "page_view | 2 | 1", wantPending: []string{},
		},
		{
			// A mark queued behind a first claim's table lock runs on a
			// snapshot taken after the claim's commit: it finds the row.
			name: "a mark queued behind a first claim sees the new row",
			run: func(t *testing.T) {
				claim, err := store.Pool().Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer claim.Rollback(ctx)
				start, end := day(d).Bounds(time.UTC)
				if _, err := claim.Exec(ctx, `LOCK TABLE pipeline.mart_days IN SHARE ROW EXCLUSIVE MODE`); err != nil {
					t.Fatal(err)
				}
				if _, err := claim.Exec(ctx, `INSERT INTO pipeline.mart_days (day, zone, starts_at, ends_at, claimed_at, built_at)
					VALUES ($1::date, 'UTC', $2, $3, now(), now())`, d, start, end); err != nil {
					t.Fatal(err)
				}
				g := goldTx(t, 1, at, false)
				marked := async(func() error { return markMartsStale(ctx, g, occurredHours([]event.Row{{OccurredAt: micros(at)}})) })
				waitBlocked(t, 1)
				if err := claim.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				if err := <-marked; err != nil {
					t.Fatal(err)
				}
				if err := g.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			},
			wantEvents: "", wantPending: []string{d + " dirty"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetMarts(t)
			load(t, ev(100, "page_view", "2026-11-24T08:00:00Z", "u1", ""))
			if tc.built {
				build(t, d, nil)
			}
			tc.run(t)
			var want []string
			if tc.wantEvents != "" {
				want = []string{tc.wantEvents}
			}
			check(t, "marts", query(t, productRows, d), want)
			check(t, "pending", pendingDays(t), tc.wantPending)
		})
	}
}

// TestMartsFollowConcurrentLoads rebuilds a day over and over while the
// stream keeps loading events of it. Every build must see one snapshot (the
// three marts agree), and once the loads stop the day is either pending or
// its marts match gold.
func TestMartsFollowConcurrentLoads(t *testing.T) {
	resetMarts(t)
	ctx := context.Background()
	const d = "2026-11-24"
	build(t, d, nil)
	start := micros("2026-11-24T00:00:00Z")
	next := 1000
	for round := 1; round <= 3; round++ {
		stop := make(chan struct{})
		loaded := async(func() error {
			for batch := 0; ; batch++ {
				select {
				case <-stop:
					return nil
				default:
				}
				var rows []event.Row
				for i := 0; i < 20; i++ {
					next++
					at := time.UnixMicro(start + int64(next%86400)*1_000_000).UTC().Format(time.RFC3339)
					switch i % 3 {
					case 0:
						rows = append(rows, ev(next, "page_view", at, fmt.Sprint("u", next%7), ""))
					case 1:
						rows = append(rows, pay(next, "payment.succeeded", at, "u1", "1.25", "EUR"))
					default:
						rows = append(rows, audit(next, "audit.login", at, "alice", "login", ""))
					}
				}
				if _, err := store.LoadLive(ctx, LoadInput{Rows: rows}); err != nil {
					return err
				}
				time.Sleep(time.Duration(batch%round) * time.Millisecond)
			}
		})
		for i := 0; i < 10*round; i++ {
			build(t, d, nil)
			// One snapshot: the payments the product mart counts are the
			// ones the revenue mart sums, and likewise for audit events.
			check(t, fmt.Sprintf("round %d build %d: payments", round, i),
				query(t, `SELECT events FROM gold.daily_product_metrics WHERE day = $1::date AND event_type = 'payment.succeeded'`, d),
				query(t, `SELECT payments FROM gold.daily_revenue WHERE day = $1::date`, d))
			check(t, fmt.Sprintf("round %d build %d: audit", round, i),
				query(t, `SELECT events FROM gold.daily_product_metrics WHERE day = $1::date AND event_type = 'audit.login'`, d),
				query(t, `SELECT events FROM gold.daily_audit_summary WHERE day = $1::date`, d))
		}
		close(stop)
		if err := <-loaded; err != nil {
			t.Fatal(err)
		}
		gold := query(t, `SELECT event_type, count(*) FROM gold.events WHERE occurred_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
			AND occurred_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'
			GROUP BY 1 ORDER BY event_type COLLATE "C"`, d)
		marts := query(t, `SELECT event_type, events FROM gold.daily_product_metrics WHERE day = $1::date ORDER BY event_type COLLATE "C"`, d)
		if p := pendingDays(t); len(p) == 0 && !slices.Equal(gold, marts) {
			t.Fatalf("round %d: nothing pending, but the marts %v differ from gold %v", round, marts, gold)
		}
		build(t, d, nil)
		check(t, fmt.Sprintf("round %d: after a rebuild", round), query(t, `SELECT event_type, events FROM gold.daily_product_metrics
			WHERE day = $1::date ORDER BY event_type COLLATE "C"`, d), gold)
		check(t, "pending", pendingDays(t), []string{})
	}
}
