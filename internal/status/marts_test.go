package status_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/status"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/warehouse"
)

// TestPendingMarts: the days whose gold changed after their marts were
// built are on `pipeline status`, the page and its JSON, with their zone,
// state and since when.
func TestPendingMarts(t *testing.T) {
	ctx := context.Background()
	store, _ := streamtest.Database(t)
	src := status.Source{DB: store.Pool()} // no Kafka: lag unknown, the rest shows
	load := func(at string) {
		t.Helper()
		occurred, _ := time.Parse(time.RFC3339, at)
		_, err := store.LoadLive(ctx, warehouse.LoadInput{Rows: []event.Row{{EventID: uuid.Must(uuid.NewV7()), Type: "page_view",
			OccurredAt: occurred.UnixMicro(), ReceivedAt: occurred.UnixMicro(), Properties: "{}"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	build := func(day string) {
		t.Helper()
		d, _ := warehouse.ParseDay(day)
		if _, err := store.BuildMarts(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		step    func()
		total   int64
		text    []string // lines of `pipeline status` (prefixes, spaces collapsed)
		page    []string // fragments of the page
		pending []string // "day zone state" in the JSON
	}{
		{name: "nothing built", step: func() {},
			text: []string{"0 days built, cut in UTC", "none pending"}, page: []string{`<p id="marts">none pending</p>`}},
		{name: "built, nothing since", step: func() { load("2026-11-23T10:00:00Z"); build("2026-11-23"); build("2026-11-24") },
			text: []string{"2 days built, cut in UTC", "none pending"}, page: []string{`<p id="marts">none pending</p>`}},
		{name: "a late event", step: func() { load("2026-11-24T23:59:00Z") }, total: 1,
			text:    []string{"day zone state pending since for last built", "2026-11-24 UTC dirty 20"},
			page:    []string{`<table id="marts">`, `<td>2026-11-24</td><td>UTC</td><td>dirty</td>`},
			pending: []string{"2026-11-24 UTC dirty"}},
		{name: "the zone changed", step: func() {
			if _, err := store.SetMartZone(ctx, "Asia/Kolkata"); err != nil {
				t.Fatal(err)
			}
		}, total: 2,
			text:    []string{"2 days built, cut in Asia/Kolkata", "2026-11-24 UTC dirty", "2026-11-23 UTC zone"},
			page:    []string{`<td>2026-11-23</td><td>UTC</td><td>zone</td>`},
			pending: []string{"2026-11-24 UTC dirty", "2026-11-23 UTC zone"}},
		{name: "rebuilt", step: func() {
			// The UTC 23rd overlaps the 23rd and the 24th in Kolkata.
			if _, err := store.BuildMartsOverlapping(ctx, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
		},
			text: []string{"2 days built, cut in Asia/Kolkata", "none pending"}},
	} {
		// Each step builds on the previous ones: no subtests.
		func() {
			tc.step()
			snap, err := src.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !snap.Marts.Tracked || snap.Marts.PendingTotal != tc.total || len(snap.Marts.Pending) != int(tc.total) {
				t.Fatalf("%s: marts %+v", tc.name, snap.Marts)
			}
			text := snap.Text()
			if tc.total > 0 {
				t.Logf("%s: pipeline status:\n%s", tc.name, text[strings.Index(text, "Marts pending a rebuild\n"):])
			}
			section := text[strings.Index(text, "Marts pending a rebuild\n"):]
			var lines []string
			for _, l := range strings.Split(section, "\n") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			for _, want := range tc.text {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, want)
				}
				if !found {
					t.Errorf("%s: `pipeline status` lacks a line starting %q:\n%s", tc.name, want, section)
				}
			}

			srv := httptest.NewServer(status.Handler(src))
			defer srv.Close()
			code, body := get(t, srv.URL+"/status")
			if code != 200 || !strings.Contains(body, "<h2>Marts pending a rebuild</h2>") {
				t.Fatalf("%s: page %d:\n%s", tc.name, code, body)
			}
			for _, want := range tc.page {
				if !strings.Contains(body, want) {
					t.Errorf("%s: page lacks %q", tc.name, want)
				}
			}
			_, body = get(t, srv.URL+"/status?format=json")
			var js struct {
				Marts struct {
					Zone    string `json:"zone"`
					Pending []struct {
						Day   string    `json:"day"`
						Zone  string    `json:"zone"`
						State string    `json:"state"`
						Since time.Time `json:"since"`
					} `json:"pending"`
				} `json:"marts"`
			}
			if err := json.Unmarshal([]byte(body), &js); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range js.Marts.Pending {
				if p.Since.IsZero() {
					t.Errorf("%s: %s: no since", tc.name, p.Day)
				}
				got = append(got, p.Day+" "+p.Zone+" "+p.State)
			}
			if strings.Join(got, ",") != strings.Join(tc.pending, ",") {
				t.Errorf("%s: JSON pending %v, want %v", tc.name, got, tc.pending)
			}
		}()
	}
}
