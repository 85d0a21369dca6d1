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
	"github.com/acme/pipeline/warehouse"
)

// TestConflicts: an event id that arrives again with another type is on
// `pipeline status`, the page and its JSON, with the type gold kept, the one
// that arrived, and the count per day; a plain retry is not; none is "none".
func TestConflicts(t *testing.T) {
	ctx := context.Background()
	store, src, snap := emptyPipeline(t)
	if snap.Conflicts.Records != 0 || !strings.Contains(snap.Text(), "Conflicting event ids, last 7 days (a known id arriving with other content)\n──") {
		t.Fatalf("empty: %+v\n%s", snap.Conflicts, snap.Text())
	}

	now := time.Now().UTC()
	row := func(n byte, typ, source, props string, late time.Duration) event.Row {
		var id [16]byte
		id[15] = n
		return event.Row{EventID: id, Type: typ, OccurredAt: now.Add(-time.Hour).UnixMicro(), ReceivedAt: now.Add(late).UnixMicro(),
			Source: source, UserID: "u1", Properties: props, Offset: int64(late)}
	}
	order := row(1, "order.created", "web", `{"order_id":"o-1"}`, 0)
	captured := row(1, "payment.captured", "ios", `{"amount":"5.00","currency":"EUR"}`, time.Second)
	captured.AmountMicros, captured.Currency = 5_000_000, "EUR"
	for _, rows := range [][]event.Row{
		{order, row(2, "page_view", "web", `{}`, 0)},
		{captured, row(2, "page_view", "web", `{}`, 2*time.Second)}, // a conflict and a retry
	} {
		if _, err := store.LoadLive(ctx, warehouse.LoadInput{Rows: rows}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id1 := uuid.UUID(order.EventID).String()
	if c := snap.Conflicts; c.Records != 1 || c.IDs != 1 || len(c.Days) != 1 || len(c.Recent) != 1 || c.Recent[0].EventID != id1 {
		t.Fatalf("conflicts: %+v", c)
	}

	text := snap.Text()
	t.Logf("pipeline status:\n%s", text)
	for _, want := range []string{
		"conflicting duplicates: 1, of event ids: 1\n",
		warehouse.DayOf(now).String() + "  1\n",
		"gold keeps the first record of an id",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, id1) {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 6 || f[1] != "order.created" || f[2] != "payment.captured" ||
		f[3] != "event_type,source,properties" || f[4] != "ios" || f[5] != "1" {
		t.Errorf("id line %q: want kept order.created, arrived as payment.captured, differs in event_type,source,properties, source ios, 1 time", line)
	}

	srv := httptest.NewServer(status.Handler(src))
	defer srv.Close()
	code, body := get(t, srv.URL+"/status")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		`<p id="conflicts-total" class="lagging">conflicting duplicates: 1, of event ids: 1</p>`,
		`<tr><td>` + id1 + `</td><td>order.created</td><td>payment.captured</td><td>event_type, source, properties</td><td>ios</td><td>1</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	code, body = get(t, srv.URL+"/status?format=json")
	var js struct {
		Conflicts warehouse.Conflicts `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(body), &js); code != 200 || err != nil || js.Conflicts.Records != 1 ||
		len(js.Conflicts.Recent) != 1 || js.Conflicts.Recent[0].OtherType != "payment.captured" {
		t.Errorf("json %d %v: %+v", code, err, js)
	}
}
