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

// TestLostOffsets: offsets lost to retention are on `pipeline status`, the
// page and its JSON, with the partition and the range.
func TestLostOffsets(t *testing.T) {
	ctx := context.Background()
	store, src, snap := emptyPipeline(t)
	if len(snap.Lost) != 0 || !strings.Contains(snap.Text(), "Offsets lost to retention") {
		t.Fatalf("empty: %+v", snap.Lost)
	}
	if err := store.RecordLostOffsets(ctx, "events", 7, 1200, 1499); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	text := snap.Text()
	if !strings.Contains(text, "events  7          1200..1499  300") || !strings.Contains(text, "300 records lost in all") {
		t.Errorf("text lacks the gap:\n%s", text)
	}
	srv := httptest.NewServer(status.Handler(src))
	defer srv.Close()
	if code, body := get(t, srv.URL+"/status"); code != 200 || !strings.Contains(body, `<td>events</td><td>7</td><td>1200..1499</td><td>300</td>`) {
		t.Errorf("page %d lacks the gap", code)
	}
	code, body := get(t, srv.URL+"/status?format=json")
	var js struct {
		Lost  []warehouse.LostRange `json:"lost_offsets"`
		Total int64                 `json:"lost_offsets_total"`
	}
	if err := json.Unmarshal([]byte(body), &js); code != 200 || err != nil || len(js.Lost) != 1 || js.Lost[0].Last != 1499 || js.Total != 300 {
		t.Errorf("json %d %v: %+v", code, err, js)
	}
}
