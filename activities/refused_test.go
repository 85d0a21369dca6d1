package activities

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// TestGoldRefusalsDoNotStopTheStream covers issue 13 item 2 on the real
// components, with the stream connected as a role of its own:
//   - records that pass cleaning but that gold refuses (a rule the warehouse
//     added: a CHECK on gold.events) are found, quarantined with
//     PostgreSQL's reason, and the rest of each flush loads;
//   - an error no record explains (the role's INSERT privilege revoked) fails
//     the cycle retryably, naming the ranges; once the privilege is granted
//     again the same cycle loads, and nothing is lost or doubled.
func TestGoldRefusalsDoNotStopTheStream(t *testing.T) {
	s := newStack(t, 3)
	ctx := context.Background()
	admin := s.wh.Pool()
	role := "stream_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT USAGE ON SCHEMA gold, pipeline TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA gold, pipeline TO ` + role,
		`GRANT USAGE ON ALL SEQUENCES IN SCHEMA gold, pipeline TO ` + role,
		// Gold loads stage in temp tables; PUBLIC has no TEMPORARY (migration 015).
		`DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO ` + role + `', current_database()); END $$`,
		`ALTER TABLE gold.events ADD CONSTRAINT no_forbidden CHECK (NOT properties ? 'forbidden')`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `DROP OWNED BY `+role)
		_, _ = admin.Exec(context.Background(), `DROP ROLE `+role)
	})
	u, _ := url.Parse(s.wh.Pool().Config().ConnString())
	u.User = url.User(role)
	wh, err := warehouse.Open(ctx, warehouse.Config{URL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wh.Close)
	s.acts.wh = wh

	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	var msgs []streamtest.Msg
	want := map[string]bool{}
	produce := func(n, every int) {
		for i := range n {
			id := uuid.NewString()
			props := `{"path":"/p"}`
			bad := every > 0 && i%every == 0
			if bad {
				props = `{"forbidden":true}`
			}
			ev := event.Event{EventID: id, Type: "page_view", OccurredAt: hour.Add(time.Duration(i) * time.Second),
				ReceivedAt: hour.Add(time.Hour), Properties: []byte(props)}
			b, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			p := i % 3
			msgs = append(msgs, streamtest.Msg{Partition: p, Value: b})
			if !bad {
				want[id] = true
			}
		}
	}
	produce(300, 97) // 4 of them refused by the new rule
	streamtest.Produce(t, s.brokers, s.topic, msgs)
	in := CompactCycleInput{Topic: s.topic, MaxRecords: 60, FlushWait: 50 * time.Millisecond, MaxFlushes: 1}
	offsets, sum := s.drain(startOffsets(3), in, len(msgs))
	if sum.Quarantined != 4 || s.count(`SELECT count(*) FROM gold.events`) != 296 {
		t.Fatalf("after the rule: %d quarantined, %d in gold; want 4 and 296", sum.Quarantined, s.count(`SELECT count(*) FROM gold.events`))
	}
	reasons := s.strings(`SELECT reason, object_key FROM pipeline.quarantine ORDER BY partition, record_offset`)
	for _, r := range reasons {
		if !strings.Contains(r, "gold refused: ") || !strings.Contains(r, `"no_forbidden"`) || !strings.Contains(r, ".gold-refused.ndjson") {
			t.Errorf("quarantine row %q: want gold's reason naming the constraint, in a gold-refused object", r)
		}
	}
	if len(reasons) != 4 {
		t.Fatalf("quarantine: %v", reasons)
	}
	key := strings.TrimSpace(strings.Split(reasons[0], "|")[1])
	data, err := s.lake.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if qs, err := lake.DecodeQuarantine(data); err != nil || len(qs) == 0 || !strings.Contains(string(qs[0].Record.Value), "forbidden") {
		t.Fatalf("quarantine object %s: %v %v", key, qs, err)
	}

	// An error no record explains: the role may no longer insert.
	if _, err := admin.Exec(ctx, `REVOKE INSERT ON gold.events FROM `+role); err != nil {
		t.Fatal(err)
	}
	before := len(msgs)
	produce(90, 0)
	streamtest.Produce(t, s.brokers, s.topic, msgs[before:])
	in.Offsets = offsets
	_, err = s.cycle(in)
	var appErr *temporal.ApplicationError
	if err == nil || !strings.Contains(err.Error(), "permission denied for table events") || !strings.Contains(err.Error(), "gold load of partition") ||
		(errors.As(err, &appErr) && appErr.NonRetryable()) {
		t.Fatalf("revoked: want a retryable error naming the ranges and the privilege, got %v", err)
	}
	t.Logf("with INSERT revoked the cycle fails, retryably: %.300s", err)
	if _, err := admin.Exec(ctx, `GRANT INSERT ON gold.events TO `+role); err != nil {
		t.Fatal(err)
	}
	_, _ = s.drain(offsets, in, len(msgs))

	got := s.strings(`SELECT event_id::text FROM gold.events`)
	var wantIDs []string
	for id := range want {
		wantIDs = append(wantIDs, id)
	}
	slices.Sort(got)
	slices.Sort(wantIDs)
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("gold.events holds %d ids, want exactly the %d accepted and not refused", len(got), len(wantIDs))
	}
	// silver.events never got the refused records: it holds exactly the
	// loaded events.
	silverIDs := slices.Sorted(maps.Keys(silvertest.IDs(t, s.silverCfg)))
	if !slices.Equal(silverIDs, wantIDs) {
		t.Fatalf("silver.events holds %d ids, want exactly the %d in gold", len(silverIDs), len(wantIDs))
	}
	if n := s.count(`SELECT count(*) FROM pipeline.quarantine`); n != 4 {
		t.Fatalf("%d quarantined after the privilege came back, want 4", n)
	}
	t.Logf("%d loaded exactly, 4 quarantined with gold's reason: %s", len(got), reasons[0])
}
