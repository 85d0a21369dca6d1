package status_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acme/pipeline/internal/status"
	"github.com/acme/pipeline/warehouse"
)

// TestRebuilding: the days a backfill holds are on `pipeline status`, the
// page and its JSON, with the workflow that holds them.
func TestRebuilding(t *testing.T) {
	ctx := context.Background()
	store, src, snap := emptyPipeline(t)
	if len(snap.Rebuilding) != 0 || !strings.Contains(snap.Text(), "Days being rebuilt (one backfill of a day at a time)\n──") {
		t.Fatalf("empty: %+v\n%s", snap.Rebuilding, snap.Text())
	}
	days := []warehouse.Day{{Year: 2026, Month: 11, Day: 23}, {Year: 2026, Month: 11, Day: 24}}
	if held, err := store.AcquireLeases(ctx, "backfill-2026-11-23-2026-11-24", "run-1", days, nil); err != nil || len(held) != 0 {
		t.Fatalf("lease: %v %v", held, err)
	}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	text := snap.Text()
	for _, want := range []string{"2026-11-23  backfill-2026-11-23-2026-11-24", "2026-11-24  backfill-2026-11-23-2026-11-24",
		"temporal workflow query -w WORKFLOW --type progress"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	srv := httptest.NewServer(status.Handler(src))
	defer srv.Close()
	if code, body := get(t, srv.URL+"/status"); code != 200 || !strings.Contains(body, `<table id="rebuilding">`) ||
		!strings.Contains(body, `<td>2026-11-24</td><td>backfill-2026-11-23-2026-11-24</td>`) {
		t.Errorf("page %d lacks the days:\n%s", code, body)
	}
	code, body := get(t, srv.URL+"/status?format=json")
	var js struct {
		Rebuilding []warehouse.Lease `json:"rebuilding"`
	}
	if err := json.Unmarshal([]byte(body), &js); code != 200 || err != nil || len(js.Rebuilding) != 2 || js.Rebuilding[0].RunID != "run-1" {
		t.Errorf("json %d %v: %+v", code, err, js)
	}
}
