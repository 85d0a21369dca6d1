package warehouse

import (
	"context"
	"errors"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
)

// Strings that must arrive byte for byte.
const (
	sqlish  = `'); DROP TABLE gold.events; --`
	unicode = "Zoë Ünïcødé 日本語 🚀 \u200d"
	quotes  = `back\slash "quoted" 'single' %_ \N`
)

// bothPaths runs test with LoadLive pinned to each path: staged, direct
// (falling back to probed direct, then staged, on a conflict) and probed
// direct.
func bothPaths(t *testing.T, stores []*Store, test func(t *testing.T)) {
	for _, p := range []struct {
		name string
		mode loadMode
	}{{"staged", modeStaged}, {"direct", modeDirect}, {"probe", modeProbe}} {
		t.Run(p.name, func(t *testing.T) {
			for _, s := range stores {
				s.mode.Store(int32(p.mode))
			}
			defer func() {
				for _, s := range stores {
					s.mode.Store(int32(modeAuto))
				}
			}()
			test(t)
		})
	}
}

// liveBatch is a realistic mix of one day and its neighbours, used by the load
// and mart tests.
func liveBatch() []event.Row {
	return []event.Row{
		ev(1, "page_view", "2026-11-24T00:00:00Z", "u1", obj("path", "/pricing?q="+sqlish, "title", unicode)),
		ev(2, "page_view", "2026-11-24T08:30:00.123456Z", "u1", obj("path", "/", "note", quotes)),
		ev(3, "page_view", "2026-11-24T12:00:00Z", "u2", ""),
		ev(4, "page_view", "2026-11-24T13:00:00Z", "", obj("path", "/anon")),
		ev(5, "page_view", "2026-11-24T23:59:59.999999Z", sqlish, obj("path", "/late")),
		ev(6, "signup", "2026-11-24T09:00:00Z", "ユーザー-1", obj("plan", "pro")),
		ev(7, "page_view", "2026-11-23T23:59:59.999999Z", "u1", ""), // the day before (UTC)
		ev(8, "page_view", "2026-11-25T00:00:00Z", "u1", ""),        // the day after (UTC)

		pay(10, "payment.succeeded", "2026-11-24T10:00:00Z", "u1", "10.50", "EUR"),
		pay(11, "payment.succeeded", "2026-11-24T10:01:00Z", "u2", "0.000001", "EUR"),
		pay(12, "payment.captured", "2026-11-24T10:02:00Z", "u1", "1234567.891234", "EUR"),
		pay(13, "payment.refunded", "2026-11-24T10:03:00Z", "u1", "2.25", "EUR"),
		pay(14, "payment.succeeded", "2026-11-24T11:00:00Z", "u7", "999999999999.999999", "EUR"),
		pay(15, "payment.succeeded", "2026-11-24T11:30:00Z", "u3", "99.99", "USD"),
		pay(16, "payment.refunded", "2026-11-24T11:31:00Z", "u3", "99.99", "USD"),
		pay(17, "payment.succeeded", "2026-11-24T11:32:00Z", "u4", "0.01", "USD"),
		pay(18, "payment.succeeded", "2026-11-24T16:00:00Z", "u5", "1500", "JPY"),
		pay(19, "payment.refunded", "2026-11-24T17:00:00Z", unicode, "12.345678", "BRL"),
		pay(20, "payment.succeeded", "2026-11-23T23:59:59.999999Z", "u1", "5", "USD"), // day before
		pay(21, "payment.succeeded", "2026-11-25T00:00:00Z", "u1", "7", "USD"),        // day after

		audit(30, "audit.login", "2026-11-24T07:00:00Z", "alice", "login", ""),
		audit(31, "audit.login", "2026-11-24T07:05:00Z", "alice", "login", "success"),
		audit(32, "audit.login", "2026-11-24T07:06:00Z", "alice", "login", "failure"),
		audit(33, "audit.permission_change", "2026-11-24T20:00:00Z", unicode, "grant"+sqlish, ""),
		audit(34, "audit.login", "2026-11-25T00:00:01Z", "alice", "login", ""), // day after
	}
}

func TestLoadLive(t *testing.T) { bothPaths(t, []*Store{store}, testLoadLive) }

func testLoadLive(t *testing.T) {
	reset(t)
	ctx := context.Background()
	batch := liveBatch()
	in := LoadInput{
		Rows:    batch,
		Sources: []string{"bronze/events/dt=2026-11-24/hour=10/p0-00000000000000000000-00000000000000000099.ndjson.zst"},
		Topic:   "events",
		Offsets: map[int32]int64{0: 100, 1: 40, 2: 7},
	}
	res, err := store.LoadLive(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := LoadResult{LoadID: res.LoadID, Rows: 25, Inserted: 25, Duplicates: 0, Payments: 12, Audit: 5,
		Direct: store.mode.Load() != int32(modeStaged)}
	if res != want || res.LoadID == 0 {
		t.Fatalf("first load = %+v, want %+v", res, want)
	}

	// Exact values, checked against literals.
	for _, c := range []struct {
		key       int
		sql, want string
	}{
		{14, `SELECT amount::text FROM gold.payments WHERE event_id = $1`, "999999999999.999999"},
		{1, `SELECT properties->>'title' FROM gold.events WHERE event_id = $1`, unicode},
		{1, `SELECT properties->>'path' FROM gold.events WHERE event_id = $1`, "/pricing?q=" + sqlish},
		{2, `SELECT properties->>'note' FROM gold.events WHERE event_id = $1`, quotes},
		{2, `SELECT occurred_at::text FROM gold.events WHERE event_id = $1`, "2026-11-24 08:30:00.123456+00"},
		{5, `SELECT user_id FROM gold.events WHERE event_id = $1`, sqlish},
		{4, `SELECT COALESCE(user_id, '∅') FROM gold.events WHERE event_id = $1`, "∅"},
		{19, `SELECT amount::text || ' ' || currency || ' ' || is_refund || ' ' || user_id FROM gold.payments WHERE event_id = $1`, "12.345678 BRL true " + unicode},
		{11, `SELECT amount::text || ' ' || currency || ' ' || is_refund FROM gold.payments WHERE event_id = $1`, "0.000001 EUR false"},
		{18, `SELECT amount::text || ' ' || currency || ' ' || is_refund FROM gold.payments WHERE event_id = $1`, "1500.000000 JPY false"},
		{33, `SELECT actor || '|' || action || '|' || outcome FROM gold.audit_log WHERE event_id = $1`, unicode + "|grant" + sqlish + "|success"},
		{32, `SELECT actor || '|' || action || '|' || outcome FROM gold.audit_log WHERE event_id = $1`, "alice|login|failure"},
	} {
		var got string
		if err := store.Pool().QueryRow(ctx, c.sql, id(c.key)).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if got != c.want {
			t.Errorf("%s [event %d] = %q, want %q", c.sql, c.key, got, c.want)
		}
	}
	if got := query(t, `SELECT kind, source_keys::text, topic, rows_seen, rows_inserted, rows_duplicate, finished_at IS NOT NULL
		FROM pipeline.loads`); !slices.Equal(got, []string{
		"live | {bronze/events/dt=2026-11-24/hour=10/p0-00000000000000000000-00000000000000000099.ndjson.zst} | events | 25 | 25 | 0 | true",
	}) {
		t.Errorf("pipeline.loads = %q", got)
	}
	if n := count(t, "SELECT count(DISTINCT load_id) FROM gold.events WHERE load_id = $1", res.LoadID); n != 1 {
		t.Errorf("gold rows not stamped with load %d", res.LoadID)
	}

	// The same load again: nothing changes but a second lineage row.
	before := dump(t)
	res2, err := store.LoadLive(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// The direct paths probe gold and COPY nothing: still direct.
	want2 := LoadResult{LoadID: res2.LoadID, Rows: 25, Inserted: 0, Duplicates: 25, Direct: store.mode.Load() != int32(modeStaged)}
	if res2 != want2 || res2.LoadID == res.LoadID {
		t.Fatalf("second load = %+v, want %+v", res2, want2)
	}
	if after := dump(t); !maps.EqualFunc(before, after, slices.Equal) {
		t.Fatalf("second identical load changed gold:\nbefore %v\nafter  %v", before, after)
	}
}

func TestLoadLiveDuplicatesInBatch(t *testing.T) {
	bothPaths(t, []*Store{store}, testLoadLiveDuplicatesInBatch)
}

func testLoadLiveDuplicatesInBatch(t *testing.T) {
	reset(t)
	ctx := context.Background()
	dup := func(recv int64, part int32, off int64, mark string) event.Row {
		r := ev(50, "page_view", "2026-11-24T10:00:00Z", "u1", obj("mark", mark))
		r.ReceivedAt, r.Partition, r.Offset = recv, part, off
		return r
	}
	base := micros("2026-11-24T10:00:05Z")
	for _, tc := range []struct {
		name string
		rows []event.Row
		want string // mark of the winner
	}{
		{"earliest received wins", []event.Row{dup(base+10, 1, 5, "A"), dup(base+5, 2, 9, "B"), dup(base+7, 0, 1, "C")}, "B"},
		{"then lowest partition", []event.Row{dup(base, 2, 1, "A"), dup(base, 1, 20, "B"), dup(base, 1, 30, "C")}, "B"},
		{"then lowest offset", []event.Row{dup(base, 1, 30, "A"), dup(base, 1, 20, "B"), dup(base, 1, 21, "C")}, "B"},
		{"full tie: first in batch", []event.Row{dup(base, 1, 1, "A"), dup(base, 1, 1, "B")}, "A"},
		{"winner last", []event.Row{dup(base+3, 1, 1, "A"), dup(base+2, 1, 1, "B"), dup(base+1, 1, 1, "C")}, "C"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reset(t)
			rows := append(slices.Clone(tc.rows), ev(51, "page_view", "2026-11-24T10:00:00Z", "u2", ""))
			res, err := store.LoadLive(ctx, LoadInput{Rows: rows})
			if err != nil {
				t.Fatal(err)
			}
			if res.Inserted != 2 || res.Duplicates != int64(len(tc.rows)-1) {
				t.Fatalf("result %+v, want 2 inserted, %d duplicates", res, len(tc.rows)-1)
			}
			var mark string
			if err := store.Pool().QueryRow(ctx, "SELECT properties->>'mark' FROM gold.events WHERE event_id = $1", id(50)).Scan(&mark); err != nil {
				t.Fatal(err)
			}
			if mark != tc.want {
				t.Fatalf("winner %s, want %s", mark, tc.want)
			}
		})
	}
}

func TestLoadLiveOffsets(t *testing.T) {
	reset(t)
	ctx := context.Background()
	steps := []struct {
		topic   string
		offsets map[int32]int64
		want    map[int32]int64
	}{
		{"events", map[int32]int64{0: 10, 1: 5}, map[int32]int64{0: 10, 1: 5}},
		{"events", map[int32]int64{0: 8, 1: 7}, map[int32]int64{0: 10, 1: 7}}, // 0 would go backwards
		{"events", map[int32]int64{2: 0}, map[int32]int64{0: 10, 1: 7, 2: 0}},
		{"other", map[int32]int64{0: 99}, map[int32]int64{0: 10, 1: 7, 2: 0}}, // topics are separate
	}
	for i, s := range steps {
		// Offset-only loads (an idle or all-quarantined cycle) record no lineage.
		res, err := store.LoadLive(ctx, LoadInput{Topic: s.topic, Offsets: s.offsets})
		if err != nil {
			t.Fatal(err)
		}
		if res.LoadID != 0 {
			t.Errorf("step %d: offset-only load recorded lineage %d", i, res.LoadID)
		}
		got, err := store.StreamOffsets(ctx, "events")
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, s.want) {
			t.Fatalf("step %d: offsets %v, want %v", i, got, s.want)
		}
	}
	if got, _ := store.StreamOffsets(ctx, "nope"); len(got) != 0 {
		t.Fatalf("unknown topic: %v", got)
	}
	if _, err := store.LoadLive(ctx, LoadInput{Offsets: map[int32]int64{0: 1}}); !IsPermanent(err) {
		t.Fatalf("offsets without topic: %v, want a permanent InputError", err)
	}
}

// TestLoadLiveBadRow: a row PostgreSQL refuses fails the whole load, names the
// event, is permanent, and leaves gold and offsets untouched.
func TestLoadLiveBadRow(t *testing.T) { bothPaths(t, []*Store{store}, testLoadLiveBadRow) }

func testLoadLiveBadRow(t *testing.T) {
	reset(t)
	ctx := context.Background()
	bad := ev(61, "page_view", "2026-11-24T10:00:00Z", "u1", "")
	bad.Properties = `{"broken": `
	for _, tc := range []struct {
		name string
		row  event.Row
		want string
	}{
		{"invalid JSON", bad, "00000000-0000-7000-8000-000000000061"},
		{"invalid UTF-8", func() event.Row {
			r := ev(62, "page_view", "2026-11-24T10:00:00Z", "u\xff", "")
			return r
		}(), "00000000-0000-7000-8000-000000000062"},
		{"invalid UTF-8 in an audit actor", audit(63, "audit.login", "2026-11-24T10:00:00Z", "bad\xff", "login", ""),
			"event_id 00000000-0000-7000-8000-000000000063 (" /* gold_stage_audit or audit_log */},
		{"timestamp out of range", func() event.Row {
			r := ev(64, "page_view", "2026-11-24T10:00:00Z", "u1", "")
			r.OccurredAt = math.MinInt64 + 1
			return r
		}(), "Rows: event_id 00000000-0000-7000-8000-000000000064: occurred_at -9223372036854775807 µs is before 4713 BC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.LoadLive(ctx, LoadInput{
				Rows:    []event.Row{ev(60, "page_view", "2026-11-24T10:00:00Z", "u1", ""), tc.row},
				Topic:   "events",
				Offsets: map[int32]int64{0: 1000},
			})
			t.Logf("error: %v", err)
			if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want a permanent error naming %s", err, tc.want)
			}
			if n := count(t, "SELECT count(*) FROM gold.events") + count(t, "SELECT count(*) FROM pipeline.stream_offsets") +
				count(t, "SELECT count(*) FROM pipeline.loads"); n != 0 {
				t.Fatalf("failed load left %d rows behind", n)
			}
		})
	}
}

// TestLoadAfterFailure: the staging tables outlive a transaction on their
// connection; a failed load must leave nothing in them for the next one.
func TestLoadAfterFailure(t *testing.T) {
	one, err := Open(context.Background(), Config{URL: testURL, MaxConns: 1}) // every call on the same connection
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	bothPaths(t, []*Store{one}, func(t *testing.T) { testLoadAfterFailure(t, one) })
}

func testLoadAfterFailure(t *testing.T, one *Store) {
	reset(t)
	ctx := context.Background()
	good := []event.Row{ev(80, "page_view", "2026-11-24T10:00:00Z", "u1", ""), pay(81, "payment.succeeded", "2026-11-24T10:00:00Z", "u1", "1", "EUR"),
		audit(82, "audit.login", "2026-11-24T10:00:00Z", "bob", "login", "")}
	bad := ev(83, "page_view", "2026-11-24T10:00:00Z", "u1", `{"broken"`)
	if _, err := one.LoadLive(ctx, LoadInput{Rows: append(slices.Clone(good), bad)}); err == nil {
		t.Fatal("bad load succeeded")
	}
	failing := func(yield func(event.Row, error) bool) {
		for _, r := range good {
			yield(r, nil)
		}
		yield(event.Row{}, errors.New("read silver: timeout"))
	}
	if _, err := one.ReplaceDays(ctx, ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24"), Rows: failing}); err == nil {
		t.Fatal("failing replacement succeeded")
	}
	res, err := one.LoadLive(ctx, LoadInput{Rows: good[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 1 || res.Payments != 0 || res.Audit != 0 {
		t.Fatalf("load after failures: %+v, want exactly the one row", res)
	}
	res, err = one.LoadLive(ctx, LoadInput{Rows: good})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 2 || res.Duplicates != 1 || res.Payments != 1 || res.Audit != 1 || res.Direct != (one.mode.Load() != int32(modeStaged)) {
		t.Fatalf("second load: %+v", res)
	}
	if n := count(t, "SELECT (SELECT count(*) FROM gold.events) + (SELECT count(*) FROM gold.payments) + (SELECT count(*) FROM gold.audit_log)"); n != 5 {
		t.Fatalf("%d fact rows, want 5", n)
	}
}

func day(s string) Day {
	d, err := ParseDay(s)
	if err != nil {
		panic(err)
	}
	return d
}

// daysDump is dump restricted to rows that occurred in [from, to).
func daysDump(t *testing.T, from, to string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, sql := range dumpSQL {
		sql = strings.Replace(sql, " ORDER BY", " WHERE occurred_at >= '"+from+"' AND occurred_at < '"+to+"' ORDER BY", 1)
		out[name] = query(t, sql)
	}
	return out
}

func TestReplaceDays(t *testing.T) {
	reset(t)
	ctx := context.Background()
	if _, err := store.LoadLive(ctx, LoadInput{Rows: liveBatch()}); err != nil {
		t.Fatal(err)
	}
	before23 := daysDump(t, "2026-11-23", "2026-11-24")
	before25 := daysDump(t, "2026-11-25", "2026-11-26")

	// The rebuilt 24th: event 1 with other properties, event 3 gone, payment
	// 13 (EUR refund) gone, audit 30 gone, a new payment 40, a repeated id,
	// and a row of the 25th that must be skipped.
	e1 := ev(1, "page_view", "2026-11-24T00:00:00Z", "u1", obj("path", "/rebuilt"))
	rebuilt := []event.Row{
		e1,
		ev(2, "page_view", "2026-11-24T08:30:00.123456Z", "u1", obj("path", "/", "note", quotes)),
		ev(4, "page_view", "2026-11-24T13:00:00Z", "", obj("path", "/anon")),
		ev(5, "page_view", "2026-11-24T23:59:59.999999Z", sqlish, obj("path", "/late")),
		ev(6, "signup", "2026-11-24T09:00:00Z", "ユーザー-1", obj("plan", "pro")),
		pay(10, "payment.succeeded", "2026-11-24T10:00:00Z", "u1", "10.50", "EUR"),
		pay(40, "payment.refunded", "2026-11-24T10:00:00Z", "u9", "3.000003", "CHF"),
		audit(31, "audit.login", "2026-11-24T07:05:00Z", "alice", "login", "success"),
		ev(8, "page_view", "2026-11-25T00:00:00Z", "u1", obj("path", "/changed")), // the 25th: skipped
	}
	later := e1
	later.ReceivedAt += 5 // loses to e1
	later.Properties = obj("path", "/loser")
	rebuilt = append(rebuilt, later)

	in := ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24"), Rows: SliceRows(rebuilt), Sources: []string{"silver/events/dt=2026-11-24/hour=00/a.parquet"}}
	var first map[string][]string
	for run := 1; run <= 2; run++ {
		res, err := store.ReplaceDays(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// 25 rows in the live batch, 5 of them on the 23rd or 25th (#7, #20;
		// #8, #21, #34): 20 on the 24th. The second run deletes the first's 8.
		wantDeleted := int64(20)
		if run == 2 {
			wantDeleted = 8
		}
		want := ReplaceResult{LoadID: res.LoadID, Deleted: wantDeleted, Rows: 10, OutOfRange: 1, Inserted: 8, Duplicates: 1, Payments: 2, Audit: 1}
		if res != want {
			t.Fatalf("run %d: %+v, want %+v", run, res, want)
		}
		got := daysDump(t, "2026-11-24", "2026-11-25")
		if run == 1 {
			first = got
		} else if !maps.EqualFunc(first, got, slices.Equal) {
			t.Fatalf("second ReplaceDays differs:\n%v\n%v", first, got)
		}
		if n := len(got["events"]); n != 8 {
			t.Fatalf("run %d: %d events on the 24th, want 8", run, n)
		}
		if !maps.EqualFunc(before23, daysDump(t, "2026-11-23", "2026-11-24"), slices.Equal) ||
			!maps.EqualFunc(before25, daysDump(t, "2026-11-25", "2026-11-26"), slices.Equal) {
			t.Fatalf("run %d: neighbouring days changed", run)
		}
	}
	if got := query(t, `SELECT event_id::text || ' ' || amount::text || ' ' || currency || ' ' || is_refund FROM gold.payments
		WHERE occurred_at >= '2026-11-24' AND occurred_at < '2026-11-25' ORDER BY 1`); !slices.Equal(got, []string{
		"00000000-0000-7000-8000-000000000010 10.500000 EUR false",
		"00000000-0000-7000-8000-000000000040 3.000003 CHF true",
	}) {
		t.Fatalf("payments of the 24th: %q", got)
	}
	var path string
	if err := store.Pool().QueryRow(ctx, "SELECT properties->>'path' FROM gold.events WHERE event_id = $1", id(1)).Scan(&path); err != nil || path != "/rebuilt" {
		t.Fatalf("event 1 path %q (%v), want /rebuilt", path, err)
	}
	if got := query(t, `SELECT kind, day_from::text, day_to::text, time_zone, rows_seen, rows_inserted, rows_duplicate,
		rows_out_of_range, rows_deleted FROM pipeline.loads WHERE kind = 'backfill' ORDER BY load_id`); !slices.Equal(got, []string{
		"backfill | 2026-11-24 | 2026-11-24 | UTC | 10 | 8 | 1 | 1 | 20",
		"backfill | 2026-11-24 | 2026-11-24 | UTC | 10 | 8 | 1 | 1 | 8",
	}) {
		t.Fatalf("lineage: %q", got)
	}
}

// TestReplaceDaysZone replaces a day in São Paulo (UTC-3): its instants are
// [03:00Z, 03:00Z next day).
func TestReplaceDaysZone(t *testing.T) {
	reset(t)
	ctx := context.Background()
	sp, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	old := []event.Row{
		ev(1, "page_view", "2026-11-24T02:59:59.999999Z", "u1", ""), // the 23rd in São Paulo
		ev(2, "page_view", "2026-11-24T03:00:00Z", "u1", ""),        // the 24th
		ev(3, "page_view", "2026-11-25T02:59:59Z", "u1", ""),        // the 24th
		ev(4, "page_view", "2026-11-25T03:00:00Z", "u1", ""),        // the 25th
	}
	if _, err := store.LoadLive(ctx, LoadInput{Rows: old}); err != nil {
		t.Fatal(err)
	}
	res, err := store.ReplaceDays(ctx, ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24"), Loc: sp,
		Rows: SliceRows([]event.Row{old[0], ev(5, "page_view", "2026-11-24T12:00:00Z", "u1", ""), old[3]})})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 2 || res.Inserted != 1 || res.OutOfRange != 2 {
		t.Fatalf("%+v, want 2 deleted, 1 inserted, 2 out of range", res)
	}
	if got := query(t, "SELECT event_id::text FROM gold.events ORDER BY 1"); !slices.Equal(got, []string{
		"00000000-0000-7000-8000-000000000001", "00000000-0000-7000-8000-000000000004", "00000000-0000-7000-8000-000000000005",
	}) {
		t.Fatalf("events: %v", got)
	}
}

// TestReplaceDaysAtomic: while a replacement streams its rows, other sessions
// see the old day; a failing row source leaves the day as it was.
func TestReplaceDaysAtomic(t *testing.T) {
	reset(t)
	ctx := context.Background()
	var old []event.Row
	for i := range 100 {
		old = append(old, ev(100+i, "page_view", "2026-11-24T10:00:00Z", "u1", ""))
	}
	if _, err := store.LoadLive(ctx, LoadInput{Rows: old}); err != nil {
		t.Fatal(err)
	}
	paused, resume := make(chan struct{}), make(chan struct{})
	failAfter := -1
	rows := func(yield func(event.Row, error) bool) {
		for i := range 50 {
			if i == 25 {
				close(paused)
				<-resume
			}
			if i == failAfter {
				yield(event.Row{}, errors.New("s3: connection reset"))
				return
			}
			if !yield(ev(1000+i, "page_view", "2026-11-24T11:00:00Z", "u2", ""), nil) {
				return
			}
		}
	}
	var seq iter.Seq2[event.Row, error] = rows
	done := make(chan error)
	go func() {
		_, err := store.ReplaceDays(ctx, ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24"), Rows: seq})
		done <- err
	}()
	<-paused
	if n := count(t, "SELECT count(*) FROM gold.events"); n != 100 {
		t.Errorf("mid-replacement a reader sees %d events, want the old 100", n)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := query(t, "SELECT count(*), min(event_id::text) FROM gold.events"); got[0] != "50 | 00000000-0000-7000-8000-000000001000" {
		t.Fatalf("after: %v", got)
	}

	// A source that fails halfway: the error comes back, the day is untouched.
	paused, resume = make(chan struct{}), make(chan struct{})
	close(resume)
	failAfter = 40
	_, err := store.ReplaceDays(ctx, ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24"), Rows: seq})
	if err == nil || !strings.Contains(err.Error(), "s3: connection reset") {
		t.Fatalf("err = %v, want the source's error", err)
	}
	if IsPermanent(err) {
		t.Errorf("a source error should be retryable: %v", err)
	}
	if n := count(t, "SELECT count(*) FROM gold.events"); n != 50 {
		t.Fatalf("after a failed replacement %d events, want 50", n)
	}
}

func TestReplaceDaysInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   ReplaceInput
		want string
	}{
		{"no days", ReplaceInput{Rows: SliceRows(nil)}, "From: From and To are required"},
		{"from after to", ReplaceInput{From: day("2026-11-25"), To: day("2026-11-24"), Rows: SliceRows(nil)}, "From: 2026-11-25 is after To 2026-11-24"},
		{"too long", ReplaceInput{From: day("2026-01-01"), To: day("2026-03-01"), Rows: SliceRows(nil)}, "To: 2026-01-01..2026-03-01 is 60 days; at most 31"},
		{"no rows", ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24")}, "Rows: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.ReplaceDays(context.Background(), tc.in)
			var ie *InputError
			if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want InputError %q", err, tc.want)
			}
		})
	}
}

// TestLoadLivePaths: in its default mode LoadLive COPYs straight into gold,
// probes gold for the batch's ids when an event_id is already there, and
// probes first for a while after a conflict.
func TestLoadLivePaths(t *testing.T) {
	reset(t)
	ctx := context.Background()
	store.directSkip.Store(0)
	batch := func(from, to int) []event.Row {
		var rows []event.Row
		for i := from; i <= to; i++ {
			rows = append(rows, pay(i, "payment.succeeded", "2026-11-24T10:00:00Z", "u1", "1.5", "EUR"))
		}
		return rows
	}
	load := func(rows []event.Row) LoadResult {
		t.Helper()
		res, err := store.LoadLive(ctx, LoadInput{Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	probes := store.probes.Load()
	if res := load(batch(1, 10)); !res.Direct || res.Inserted != 10 || res.Payments != 10 || store.probes.Load() != probes {
		t.Fatalf("fresh batch: %+v, want direct without a probe", res)
	}
	// Ids 5..10 exist: the direct COPY fails part way; the probe finds them
	// and the COPY of 11..15 goes through.
	if res := load(batch(5, 15)); !res.Direct || res.Inserted != 5 || res.Duplicates != 6 || res.Payments != 5 || store.probes.Load() != probes+1 {
		t.Fatalf("overlapping batch: %+v, want 5 inserted, 6 duplicates, direct after a probe", res)
	}
	if n := count(t, "SELECT count(*) FROM gold.payments WHERE amount = 1.5"); n != 15 {
		t.Fatalf("%d payments, want 15", n)
	}
	for i := range directCooldown {
		if res := load(batch(100+i, 100+i)); !res.Direct || store.probes.Load() != probes+2+int64(i) {
			t.Fatalf("load %d after a conflict did not probe first: %+v", i+1, res)
		}
	}
	if res := load(batch(200, 201)); !res.Direct || store.probes.Load() != probes+1+directCooldown {
		t.Fatalf("after the cool-down: %+v, want direct without a probe", res)
	}
}

// TestAmounts: amounts arrive exactly in gold.payments on both paths (the
// direct path encodes numeric itself).
func TestAmounts(t *testing.T) {
	amounts := []string{"0", "0.000001", "0.5", "1", "9999.9999", "10000", "10000.0001", "12.345678", "100000000",
		"123456789012.345678", "999999999999.999999", "100000000000", "0.01", "1500", "99990000.00001"}
	bothPaths(t, []*Store{store}, func(t *testing.T) {
		reset(t)
		var rows []event.Row
		for i, a := range amounts {
			rows = append(rows, pay(i+1, "payment.succeeded", "2026-11-24T10:00:00Z", "u1", a, "EUR"))
		}
		if _, err := store.LoadLive(context.Background(), LoadInput{Rows: rows}); err != nil {
			t.Fatal(err)
		}
		got := query(t, "SELECT amount::text FROM gold.payments ORDER BY event_id")
		want := []string{"0.000000", "0.000001", "0.500000", "1.000000", "9999.999900", "10000.000000", "10000.000100",
			"12.345678", "100000000.000000", "123456789012.345678", "999999999999.999999", "100000000000.000000",
			"0.010000", "1500.000000", "99990000.000010"}
		check(t, "amounts", got, want)
	})
	// Beyond numeric(18,6): refused, permanently.
	r := pay(99, "payment.succeeded", "2026-11-24T10:00:00Z", "u1", "1", "EUR")
	r.AmountMicros = 1_000_000_000_000_000_000 // 10^12 units
	t.Run("overflow", func(t *testing.T) {
		bothPaths(t, []*Store{store}, func(t *testing.T) {
			_, err := store.LoadLive(context.Background(), LoadInput{Rows: []event.Row{r}})
			t.Logf("error: %v", err)
			if err == nil || !IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent numeric overflow", err)
			}
		})
	})
}
