package status_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/internal/status"
	"github.com/acme/pipeline/warehouse"
)

// TestSilverSetAside: the silver hours that hour compaction set aside are on
// `pipeline status`, the page and its JSON, with their reason; none is
// "none".
func TestSilverSetAside(t *testing.T) {
	ctx := context.Background()
	store, src, snap := emptyPipeline(t)
	if len(snap.SilverSetAside) != 0 || !strings.Contains(snap.Text(), "Silver hours set aside by hour compaction\n──") {
		t.Fatalf("empty: %+v\n%s", snap.SilverSetAside, snap.Text())
	}

	h := time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)
	key := "silver/events/dt=2026-11-24/hour=11/p00-000000000200-000000000299.parquet"
	for _, sa := range []warehouse.SetAsideHour{
		{Hour: h, Partition: 0, Topic: "events", ErrorType: "SilverMissing", Key: key,
			Reason: "silver file " + key + " is live in pipeline.silver_objects but missing from the bucket"},
		{Hour: h.Add(time.Hour), Partition: 1, Topic: "events", ErrorType: "SilverCorrupt", Reason: "not readable Parquet"},
	} {
		if _, err := store.SetAsideSilverHour(ctx, sa, h.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.SilverSetAside) != 2 || snap.SilverSetAsideTotal != 2 || snap.SilverSetAside[0].Key != key {
		t.Fatalf("set aside: %+v", snap.SilverSetAside)
	}

	text := snap.Text()
	t.Logf("pipeline status:\n%s", text)
	line := func(prefix string) string {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Errorf("no line starting with %q", prefix)
		return ""
	}
	for _, c := range []struct{ prefix, partition, object, reason string }{
		{"2026-11-24 11:00", "0", key, "SilverMissing: silver file " + key + " is live"},
		{"2026-11-24 12:00", "1", "-", "SilverCorrupt: not readable Parquet"},
	} {
		l := line(c.prefix)
		f := strings.Fields(l)
		if len(f) < 9 || f[2] != c.partition || f[5] != "1" || f[8] != c.object || !strings.Contains(l, c.reason) {
			t.Errorf("line %q: want partition %s, 1 attempt, object %s, reason %q", l, c.partition, c.object, c.reason)
		}
	}
	if !strings.Contains(text, "pipeline backfill --from DAY --to DAY") {
		t.Error("text does not say what to do")
	}

	srv := httptest.NewServer(status.Handler(src))
	defer srv.Close()
	code, body := get(t, srv.URL+"/status")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		`<table id="silver-set-aside">`,
		`<tr class="lagging"><td>2026-11-24 11:00</td><td>0</td>`,
		`<td class="detail">` + key + `</td><td class="detail">SilverMissing: silver file`,
		`SilverCorrupt: not readable Parquet`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	code, body = get(t, srv.URL+"/status?format=json")
	var js struct {
		SetAside []warehouse.SetAsideHour `json:"silver_set_aside"`
	}
	if err := json.Unmarshal([]byte(body), &js); code != 200 || err != nil || len(js.SetAside) != 2 || js.SetAside[1].ErrorType != "SilverCorrupt" {
		t.Errorf("json %d %v: %+v", code, err, js)
	}
}
