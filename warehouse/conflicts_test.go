package warehouse

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
)

// resetConflicts empties what reset does and the noted conflicting ids.
func resetConflicts(t *testing.T) {
	t.Helper()
	reset(t)
	if _, err := store.Pool().Exec(context.Background(), `TRUNCATE pipeline.conflicting_ids`); err != nil {
		t.Fatal(err)
	}
}

// later returns r as received again d later from another offset: a client
// retry of the same record, or, with other content, an id reused.
func later(r event.Row, d time.Duration, offset int64) event.Row {
	r.ReceivedAt += d.Microseconds()
	r.Offset = offset
	return r
}

// withProps returns r with other properties text.
func withProps(r event.Row, props string) event.Row {
	r.Properties = props
	return r
}

// oneLoad is what one LoadLive of a case must report.
type oneLoad struct {
	rows                                               []event.Row
	inserted, duplicates, conflicting, payments, audit int64
}

// TestOneEventID: a known event_id is a duplicate for gold.events,
// gold.payments and gold.audit_log alike, whatever its type, on both paths,
// within a batch and across loads; a duplicate with other content is counted
// as conflicting and its id noted; a retry of the same content is not.
func TestOneEventID(t *testing.T) { bothPaths(t, []*Store{store}, testOneEventID) }

func testOneEventID(t *testing.T) {
	ctx := context.Background()
	const at = "2026-11-24T10:00:00Z"
	order := ev(1, "order.created", at, "u1", obj("order_id", "o-1"))
	captured := later(pay(1, "payment.captured", at, "u1", "25.00", "EUR"), time.Minute, 500)
	payment := pay(4, "payment.succeeded", at, "u4", "10.00", "EUR")
	login := later(audit(4, "audit.login", at, "alice", "login", ""), time.Minute, 501)
	view := ev(5, "page_view", at, "u5", obj("path", "/"))
	other := pay(3, "payment.succeeded", at, "u3", "3.00", "EUR")
	const (
		id1 = "00000000-0000-7000-8000-000000000001"
		id3 = "00000000-0000-7000-8000-000000000003"
		id4 = "00000000-0000-7000-8000-000000000004"
		id5 = "00000000-0000-7000-8000-000000000005"
		id6 = "00000000-0000-7000-8000-000000000006"
	)
	for _, tc := range []struct {
		name  string
		loads []oneLoad
		// Exact rows afterwards: gold.events (id type), gold.payments (id
		// amount), gold.audit_log (id), pipeline.conflicting_ids (id kept
		// other fields conflicts).
		events, payments, audit, conflicts []string
	}{
		{
			name:      "order then payment in one batch",
			loads:     []oneLoad{{rows: []event.Row{captured, view, order}, inserted: 2, duplicates: 1, conflicting: 1}},
			events:    []string{id1 + " order.created", id5 + " page_view"},
			conflicts: []string{id1 + " order.created payment.captured {event_type,source,properties} 1"},
		},
		{
			name: "order then payment in two loads",
			loads: []oneLoad{
				{rows: []event.Row{order}, inserted: 1},
				{rows: []event.Row{captured, other}, inserted: 1, duplicates: 1, conflicting: 1, payments: 1},
			},
			events:    []string{id1 + " order.created", id3 + " payment.succeeded"},
			payments:  []string{id3 + " 3.000000"},
			conflicts: []string{id1 + " order.created payment.captured {event_type,source,properties} 1"},
		},
		{
			name:      "payment then audit in one batch",
			loads:     []oneLoad{{rows: []event.Row{login, payment}, inserted: 1, duplicates: 1, conflicting: 1, payments: 1}},
			events:    []string{id4 + " payment.succeeded"},
			payments:  []string{id4 + " 10.000000"},
			conflicts: []string{id4 + " payment.succeeded audit.login {event_type,user_id,source,properties} 1"},
		},
		{
			name: "payment then audit in two loads",
			loads: []oneLoad{
				{rows: []event.Row{payment}, inserted: 1, payments: 1},
				{rows: []event.Row{login}, duplicates: 1, conflicting: 1},
			},
			events:    []string{id4 + " payment.succeeded"},
			payments:  []string{id4 + " 10.000000"},
			conflicts: []string{id4 + " payment.succeeded audit.login {event_type,user_id,source,properties} 1"},
		},
		{
			name: "audit then payment in two loads",
			loads: []oneLoad{
				{rows: []event.Row{withID(login, 6)}, inserted: 1, audit: 1},
				{rows: []event.Row{later(withID(payment, 6), time.Hour, 900)}, duplicates: 1, conflicting: 1},
			},
			events:    []string{id6 + " audit.login"},
			audit:     []string{id6},
			conflicts: []string{id6 + " audit.login payment.succeeded {event_type,user_id,source,properties} 1"},
		},
		{
			name: "client retries: duplicates, no conflict",
			loads: []oneLoad{
				{rows: []event.Row{payment, later(payment, time.Second, 600), view}, inserted: 2, duplicates: 1, payments: 1},
				{rows: []event.Row{later(payment, time.Minute, 700), later(view, time.Minute, 701)}, duplicates: 2},
			},
			events:   []string{id4 + " payment.succeeded", id5 + " page_view"},
			payments: []string{id4 + " 10.000000"},
		},
		{
			name: "the same properties spelt otherwise: no conflict",
			loads: []oneLoad{
				{rows: []event.Row{withProps(view, `{"path":"/","n":1.0,"o":{"a":[1,"x"],"b":null}}`),
					later(withProps(view, `{"o": {"b": null, "a": [1e0, "x"]}, "n": 1, "path": "\u002f"}`), time.Second, 800)},
					inserted: 1, duplicates: 1},
				{rows: []event.Row{later(withProps(view, `{"n":1.00,"path":"/","o":{"b":null,"a":[1,"x"]}}`), time.Minute, 801)}, duplicates: 1},
			},
			events: []string{id5 + " page_view"},
		},
		{
			name: "the same type, another amount: conflicting, the first amount stays",
			loads: []oneLoad{
				{rows: []event.Row{payment}, inserted: 1, payments: 1},
				{rows: []event.Row{later(withProps(payment, obj("amount", "99.00", "currency", "EUR")), time.Minute, 900)}, duplicates: 1, conflicting: 1},
				{rows: []event.Row{later(withProps(payment, obj("amount", "98.00", "currency", "EUR")), 2*time.Minute, 901)}, duplicates: 1, conflicting: 1},
			},
			events:    []string{id4 + " payment.succeeded"},
			payments:  []string{id4 + " 10.000000"},
			conflicts: []string{id4 + " payment.succeeded payment.succeeded {properties} 2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetConflicts(t)
			var ids []int64
			var wantLoads []string
			for i, l := range tc.loads {
				res, err := store.LoadLive(ctx, LoadInput{Rows: l.rows})
				if err != nil {
					t.Fatalf("load %d: %v", i+1, err)
				}
				want := LoadResult{LoadID: res.LoadID, Rows: int64(len(l.rows)), Inserted: l.inserted, Duplicates: l.duplicates,
					Conflicting: l.conflicting, Payments: l.payments, Audit: l.audit, Direct: res.Direct}
				if res != want {
					t.Fatalf("load %d: %+v, want %+v", i+1, res, want)
				}
				ids = append(ids, res.LoadID)
				wantLoads = append(wantLoads, strings.Join([]string{itoa(len(l.rows)), itoa(l.inserted), itoa(l.duplicates), itoa(l.conflicting)}, " | "))
			}
			check(t, "gold.events", query(t, `SELECT event_id::text || ' ' || event_type FROM gold.events ORDER BY 1`), tc.events)
			check(t, "gold.payments", query(t, `SELECT event_id::text || ' ' || amount FROM gold.payments ORDER BY 1`), tc.payments)
			check(t, "gold.audit_log", query(t, `SELECT event_id::text FROM gold.audit_log ORDER BY 1`), tc.audit)
			check(t, "pipeline.conflicting_ids", query(t, `SELECT event_id::text || ' ' || kept_type || ' ' || other_type || ' ' || fields::text || ' ' || conflicts
				FROM pipeline.conflicting_ids ORDER BY 1`), tc.conflicts)
			check(t, "pipeline.loads", query(t, `SELECT rows_seen, rows_inserted, rows_duplicate, rows_conflicting FROM pipeline.loads ORDER BY load_id`), wantLoads)
			if n := count(t, `SELECT count(*) FROM pipeline.conflicting_ids WHERE last_load_id <> ALL($1)`, ids); n != 0 {
				t.Errorf("%d conflicting ids name another load", n)
			}
		})
	}
}

// TestConflictingDuplicates: the read behind /status and the gauge counts
// the conflicting duplicates per day of the loads since a time, and lists
// the ids newest first.
func TestConflictingDuplicates(t *testing.T) {
	resetConflicts(t)
	ctx := context.Background()
	const at = "2026-11-24T10:00:00Z"
	load := func(rows ...event.Row) {
		t.Helper()
		if _, err := store.LoadLive(ctx, LoadInput{Rows: rows}); err != nil {
			t.Fatal(err)
		}
	}
	load(ev(1, "order.created", at, "u1", ""), ev(2, "order.created", at, "u2", ""), ev(3, "page_view", at, "u3", ""))
	load(later(ev(1, "payment.captured", at, "u1", ""), time.Minute, 100), later(ev(3, "page_view", at, "u3", ""), time.Minute, 101))
	load(later(ev(1, "payment.refunded", at, "u1", ""), 2*time.Minute, 102), later(ev(2, "order.created", "2026-11-24T10:00:01Z", "u2", ""), 2*time.Minute, 103))
	// The first load of a day long gone, to check the window.
	if _, err := store.Pool().Exec(ctx, `UPDATE pipeline.loads SET started_at = '2026-01-01T12:00:00Z', rows_conflicting = 7
		WHERE load_id = (SELECT min(load_id) FROM pipeline.loads)`); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Hour)
	got, err := store.ConflictingDuplicates(ctx, since, 10)
	if err != nil {
		t.Fatal(err)
	}
	today := DayOf(time.Now().UTC())
	if got.Records != 3 || got.IDs != 2 || !slices.Equal(got.Days, []ConflictDay{{today, 3}}) || len(got.Recent) != 2 {
		t.Fatalf("got %+v, want 3 records today, 2 ids", got)
	}
	first, second := got.Recent[0], got.Recent[1]
	if first.LastSeen.Before(second.LastSeen) {
		t.Errorf("not newest first: %+v", got.Recent)
	}
	slices.SortFunc(got.Recent, func(a, b ConflictingID) int { return strings.Compare(a.EventID, b.EventID) })
	one, two := got.Recent[0], got.Recent[1]
	if one.EventID != "00000000-0000-7000-8000-000000000001" || one.KeptType != "order.created" || one.OtherType != "payment.refunded" ||
		one.Conflicts != 2 || !slices.Equal(one.Fields, []string{"event_type"}) || one.OtherSource != "web" {
		t.Errorf("id 1: %+v", one)
	}
	if two.EventID != "00000000-0000-7000-8000-000000000002" || two.OtherType != "order.created" || two.Conflicts != 1 ||
		!slices.Equal(two.Fields, []string{"occurred_at"}) {
		t.Errorf("id 2: %+v", two)
	}
	all, err := store.ConflictingDuplicates(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	if all.Records != 10 || len(all.Days) != 2 || all.Days[0] != (ConflictDay{Day{2026, 1, 1}, 7}) || len(all.Recent) != 0 {
		t.Fatalf("since January, no ids: %+v", all)
	}
}

// TestReplaceDaysOneEventID: ReplaceDays shares the staged move, so a row of
// the replaced days whose id gold holds for an event of another day stays a
// duplicate for all three tables.
func TestReplaceDaysOneEventID(t *testing.T) {
	resetConflicts(t)
	ctx := context.Background()
	if _, err := store.LoadLive(ctx, LoadInput{Rows: []event.Row{ev(1, "order.created", "2026-11-23T10:00:00Z", "u1", "")}}); err != nil {
		t.Fatal(err)
	}
	res, err := store.ReplaceDays(ctx, ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24"), Rows: SliceRows([]event.Row{
		pay(1, "payment.captured", "2026-11-24T10:00:00Z", "u1", "5", "EUR"), pay(2, "payment.captured", "2026-11-24T10:00:00Z", "u1", "6", "EUR"),
	})})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 1 || res.Duplicates != 1 || res.Payments != 1 {
		t.Fatalf("%+v, want 1 inserted, 1 duplicate, 1 payment", res)
	}
	check(t, "payments", query(t, `SELECT event_id::text FROM gold.payments`), []string{"00000000-0000-7000-8000-000000000002"})
}

// TestSameJSON: properties compare as jsonb does.
func TestSameJSON(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{`{"a":1}`, `{"a":1}`, true},
		{"", "{}", true},
		{`{"a":1,"b":2}`, `{"b": 2, "a": 1}`, true},
		{`{"a":1.0}`, `{"a":1}`, true},
		{`{"a":1e2}`, `{"a":100}`, true},
		{`{"a":"\u00e9"}`, `{"a":"é"}`, true},
		{`{"a":1,"a":2}`, `{"a":2}`, true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":"1"}`, `{"a":1}`, false},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`{"a":null}`, `{}`, false},
		{`{"a":1}`, `{"a":1,"b":1}`, false},
		{`{"broken"`, `{"broken"`, true},
		{`{"broken"`, `{}`, false},
	} {
		if got := sameJSON(c.a, c.b); got != c.same {
			t.Errorf("sameJSON(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

func withID(r event.Row, n int) event.Row {
	r.EventID = id(n)
	return r
}

func itoa[T int | int64](n T) string { return strconv.FormatInt(int64(n), 10) }
