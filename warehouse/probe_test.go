package warehouse

import (
	"context"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
)

// TestProbeRace: a load that probes gold, finds its id absent, and meets it
// in the COPY all the same (another transaction inserted it meanwhile and
// commits while the COPY waits on it) falls back to the staged path, which
// counts the row a duplicate: one event id, one event.
func TestProbeRace(t *testing.T) {
	reset(t)
	ctx := context.Background()
	store.mode.Store(int32(modeProbe))
	defer store.mode.Store(int32(modeAuto))

	row := pay(7, "payment.succeeded", "2026-11-24T10:00:00Z", "u7", "7.00", "EUR")
	other, err := store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, `INSERT INTO gold.events (event_id, event_type, occurred_at, kafka_partition, kafka_offset, load_id)
		VALUES ('00000000-0000-7000-8000-000000000007', 'payment.succeeded', '2026-11-24T10:00:00Z', 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	type out struct {
		res LoadResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := store.LoadLive(ctx, LoadInput{Rows: []event.Row{row, pay(8, "payment.succeeded", "2026-11-24T10:01:00Z", "u8", "8.00", "EUR")}})
		done <- out{res, err}
	}()
	// The load probes (the uncommitted row is invisible to it) and its COPY
	// waits on the other transaction's row: a session of this database
	// waiting on a lock.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n := count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the load's COPY never waited on the other transaction's row")
		}
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.res.Direct || o.res.Inserted != 1 || o.res.Duplicates != 1 || o.res.Payments != 1 {
		t.Fatalf("load racing another: %+v, want the staged path: 1 inserted (the other row), 1 duplicate", o.res)
	}
	if n := count(t, "SELECT count(*) FROM gold.events"); n != 2 {
		t.Fatalf("%d gold rows, want 2", n)
	}
	if n := count(t, "SELECT count(*) FROM gold.payments"); n != 1 {
		t.Fatalf("%d payments, want 1 (the racing load's new row; the other transaction's event has none)", n)
	}
}
