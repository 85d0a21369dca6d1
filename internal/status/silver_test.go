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
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/status"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
)

// TestSilverTable: silver.events is on `pipeline status`, the page and its
// JSON, from what its commits published (no S3 access needed): the
// snapshot, the snapshots kept, rows, files and their mean size, the last
// append's loads and offsets, and the loads gold holds that it does not.
func TestSilverTable(t *testing.T) {
	ctx := context.Background()
	store, dbURL := streamtest.Database(t)
	src := status.Source{DB: store.Pool()}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Silver.Published || !strings.Contains(snap.Text(), "no commit recorded yet") {
		t.Fatalf("before provisioning: %+v\n%s", snap.Silver, snap.Text())
	}

	s3 := streamtest.StartS3WithMetadata(t)
	lk, err := lake.New(s3.LakeConfig("datalake"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := silvertest.Table(t, dbURL, s3, "datalake")
	cat, err := silver.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	at := time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC).UnixMicro()
	rows := make([]event.Row, 30)
	for i := range rows {
		rows[i] = event.Row{EventID: uuid.New(), Type: "page_view", OccurredAt: at, ReceivedAt: at, Properties: "{}", Offset: int64(100 + i)}
	}
	offsets := silver.Offsets{}
	offsets.Add(1, 0, 100, 129)
	if _, err := cat.Append(ctx, rows, silver.Commit{LoadIDs: []int64{7}, Offsets: offsets}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Pool().Exec(ctx, `INSERT INTO pipeline.loads (kind, rows_inserted, silver_pending) VALUES ('live', 12, true)`); err != nil {
		t.Fatal(err)
	}

	snap, err = src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := snap.Silver
	if !st.Published || st.Rows != 30 || st.Files != 1 || st.Snapshots != 1 || st.Operation != "append" || st.LastAppendLoads != "7" ||
		st.OffsetsText() != "1/0: 100..129" || st.PendingLoads != 1 || st.PendingRows != 12 || !strings.HasPrefix(st.MetadataLocation, "s3://datalake/silver/events/metadata/") {
		t.Fatalf("silver.events on status: %+v", st)
	}
	text := snap.Text()
	t.Logf("pipeline status:\n%s", text)
	for _, want := range []string{
		"silver.events (Iceberg table; catalog \"pipeline\" in the warehouse)\n──",
		"30 rows in 1 files",
		"gold loads 7, offsets 1/0: 100..129",
		"loads pending: 1 loads (12 rows), oldest since",
		"metadata: s3://datalake/silver/events/metadata/",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}

	srv := httptest.NewServer(status.Handler(src))
	defer srv.Close()
	code, body := get(t, srv.URL+"/status")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{`<table id="silver-table">`, `<td>1/0: 100..129</td>`, `<td class="lagging">1 loads (12 rows)`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	code, body = get(t, srv.URL+"/status?format=json")
	var js struct {
		Silver status.SilverTable `json:"silver"`
	}
	if err := json.Unmarshal([]byte(body), &js); code != 200 || err != nil || js.Silver.Rows != 30 || js.Silver.LastAppendOffsets["1/0"] != [2]int64{100, 129} {
		t.Errorf("json %d %v: %+v", code, err, js.Silver)
	}
}
