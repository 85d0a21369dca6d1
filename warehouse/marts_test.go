package warehouse

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
)

// Mart rows as text, in a collation-independent order.
const (
	productRows = `SELECT event_type, events, unique_users FROM gold.daily_product_metrics
		WHERE day = $1::date ORDER BY event_type COLLATE "C"`
	revenueRows = `SELECT currency::text, payments, gross::text, refunds::text, net::text, refund_count FROM gold.daily_revenue
		WHERE day = $1::date ORDER BY currency COLLATE "C"`
	auditRows = `SELECT actor, action, outcome, events FROM gold.daily_audit_summary
		WHERE day = $1::date ORDER BY actor COLLATE "C", action COLLATE "C", outcome COLLATE "C"`
)

// TestBuildMarts checks the marts against figures computed by hand from
// liveBatch (see the comments there for which rows fall on which day).
func TestBuildMarts(t *testing.T) {
	reset(t)
	ctx := context.Background()
	berlinDST := []event.Row{ // Europe/Berlin leaves summer time on 2026-10-25: a 25-hour day.
		ev(70, "page_view", "2026-10-24T21:59:59Z", "u1", ""), // 23:59:59 on the 24th, CEST
		ev(71, "page_view", "2026-10-24T22:00:00Z", "u1", ""), // 00:00 on the 25th, CEST
		ev(72, "page_view", "2026-10-25T22:30:00Z", "u2", ""), // 23:30 on the 25th, CET
		ev(73, "page_view", "2026-10-25T23:00:00Z", "u3", ""), // 00:00 on the 26th
	}
	if _, err := store.LoadLive(ctx, LoadInput{Rows: append(liveBatch(), berlinDST...)}); err != nil {
		t.Fatal(err)
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if tokyo == nil || berlin == nil {
		t.Fatal("time zone data missing")
	}

	for _, tc := range []struct {
		name    string
		day     string
		loc     *time.Location
		product []string
		revenue []string
		audit   []string
	}{
		{
			name: "UTC day", day: "2026-11-24", loc: nil,
			product: []string{
				"audit.login | 3 | 0", // audit events carry no user_id
				"audit.permission_change | 1 | 0",
				"page_view | 5 | 3", // #1..#5: u1 twice, u2, anonymous, sqlish
				"payment.captured | 1 | 1",
				"payment.refunded | 3 | 3",
				"payment.succeeded | 6 | 6",
				"signup | 1 | 1",
			},
			revenue: []string{
				// 0.000001 + 10.50 + 1234567.891234 + 999999999999.999999; minus the 2.25 refund
				"BRL | 0 | 0.000000 | 12.345678 | -12.345678 | 1",
				"EUR | 4 | 1000001234578.391234 | 2.250000 | 1000001234576.141234 | 1",
				"JPY | 1 | 1500.000000 | 0.000000 | 1500.000000 | 0",
				"USD | 2 | 100.000000 | 99.990000 | 0.010000 | 1", // 99.99 + 0.01, 99.99 refunded
			},
			audit: []string{
				"Zoë Ünïcødé 日本語 🚀 \u200d | grant'); DROP TABLE gold.events; -- | success | 1",
				"alice | login | failure | 1",
				"alice | login | success | 2", // one explicit, one by default
			},
		},
		{
			// Tokyo's 24th is [23T15:00Z, 24T15:00Z): it gains #7 and #20 of
			// the 23rd (UTC) and loses #5, #18, #19, #33 of the afternoon.
			name: "Tokyo day", day: "2026-11-24", loc: tokyo,
			product: []string{
				"audit.login | 3 | 0",
				"page_view | 5 | 2", // #7, #1, #2 (u1), #3 (u2), #4 anonymous
				"payment.captured | 1 | 1",
				"payment.refunded | 2 | 2",
				"payment.succeeded | 6 | 5", // #10 and #20 are both u1
				"signup | 1 | 1",
			},
			revenue: []string{
				"EUR | 4 | 1000001234578.391234 | 2.250000 | 1000001234576.141234 | 1",
				"USD | 3 | 105.000000 | 99.990000 | 5.010000 | 1", // 99.99 + 0.01 + 5
			},
			audit: []string{
				"alice | login | failure | 1",
				"alice | login | success | 2",
			},
		},
		{
			name: "25-hour day in Berlin", day: "2026-10-25", loc: berlin,
			product: []string{"page_view | 2 | 2"}, // #71 and #72
		},
		{
			name: "empty day", day: "2026-11-20", loc: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for run := 1; run <= 2; run++ { // a rebuild gives the same figures
				res, err := store.BuildMarts(ctx, day(tc.day), tc.loc)
				if err != nil {
					t.Fatal(err)
				}
				zone := "UTC"
				if tc.loc != nil {
					zone = tc.loc.String()
				}
				want := MartResult{Day: day(tc.day), Zone: zone, ProductMetrics: int64(len(tc.product)), Revenue: int64(len(tc.revenue)), AuditSummary: int64(len(tc.audit))}
				if res != want {
					t.Fatalf("run %d: %+v, want %+v", run, res, want)
				}
				check(t, "daily_product_metrics", query(t, productRows, tc.day), tc.product)
				check(t, "daily_revenue", query(t, revenueRows, tc.day), tc.revenue)
				check(t, "daily_audit_summary", query(t, auditRows, tc.day), tc.audit)
			}
		})
	}

	// A rebuild after a backfill drops figures that no longer exist: without
	// its only payment (the BRL refund) BRL disappears from the 24th.
	var keep []event.Row
	for _, r := range liveBatch() {
		if r.EventID != id(19) {
			keep = append(keep, r)
		}
	}
	if _, err := store.ReplaceDays(ctx, ReplaceInput{From: day("2026-11-24"), To: day("2026-11-24"), Rows: SliceRows(keep)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.BuildMarts(ctx, day("2026-11-24"), nil); err != nil {
		t.Fatal(err)
	}
	check(t, "daily_revenue after backfill", query(t, revenueRows, "2026-11-24"), []string{
		"EUR | 4 | 1000001234578.391234 | 2.250000 | 1000001234576.141234 | 1",
		"JPY | 1 | 1500.000000 | 0.000000 | 1500.000000 | 0",
		"USD | 2 | 100.000000 | 99.990000 | 0.010000 | 1",
	})
	// Other days' marts are untouched.
	check(t, "daily_product_metrics of 2026-10-25", query(t, productRows, "2026-10-25"), []string{"page_view | 2 | 2"})
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}
