package status_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acme/pipeline/internal/status"
)

// TestIncarnations: the topic's incarnations are on `pipeline status` and
// its JSON, the current one marked, with Kafka's topic id.
func TestIncarnations(t *testing.T) {
	ctx := context.Background()
	store, src, snap := emptyPipeline(t)
	if len(snap.Incarnations) != 0 || !strings.Contains(snap.Text(), "Topic incarnations") {
		t.Fatalf("empty: %+v", snap.Incarnations)
	}
	if _, err := store.AdoptIncarnation(ctx, "events", "6iGOalqacnDpGSxa0Sz5mw"); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	text := snap.Text()
	if len(snap.Incarnations) != 1 || !strings.Contains(text, "6iGOalqacnDpGSxa0Sz5mw") || !strings.Contains(text, "current") {
		t.Fatalf("incarnations %+v\n%s", snap.Incarnations, text)
	}
	srv := httptest.NewServer(status.Handler(src))
	defer srv.Close()
	if code, body := get(t, srv.URL+"/status"); code != 200 || !strings.Contains(body, `<td>1</td><td>6iGOalqacnDpGSxa0Sz5mw</td>`) ||
		!strings.Contains(body, `<td>current</td>`) {
		t.Errorf("page %d lacks the incarnation", code)
	}
	b, err := json.Marshal(snap)
	if err != nil || !strings.Contains(string(b), `"topic_incarnations":[{"topic":"events","incarnation":1,"topic_id":"6iGOalqacnDpGSxa0Sz5mw"`) {
		t.Fatalf("json %s %v", b, err)
	}
}
