package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/status"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/warehouse"
)

const topic = "events"

// fixture: a fresh database and a kfake cluster with 3 partitions holding 5,
// 3 and 0 records; gold holds 4 events loaded from partitions 0 (offsets
// 0..2) and 1 (offset 0), so the lag is 2 + 2 + 0 = 4.
type fixture struct {
	pool    *pgxpool.Pool
	brokers []string
	now     time.Time // the snapshot clock
	hour    time.Time // now's hour
}

func setup(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	store, _ := streamtest.Database(t)
	_, brokers := streamtest.Kafka(t, topic, 3)
	var msgs []streamtest.Msg
	for p, n := range []int{5, 3, 0} {
		for i := range n {
			msgs = append(msgs, streamtest.Msg{Partition: p, Key: []byte(fmt.Sprint("u", i)), Value: []byte(`{"type":"page_view"}`)})
		}
	}
	streamtest.Produce(t, brokers, topic, msgs)

	now := time.Now().UTC().Truncate(time.Second)
	// Keep "30 minutes ago" inside now's hour and "2h ago" two hours back.
	hour := now.Truncate(time.Hour)
	inHour := hour.Add(time.Second)
	row := func(p int32, off int64, occurred, received time.Time) event.Row {
		return event.Row{EventID: uuid.Must(uuid.NewV7()), Type: "page_view", OccurredAt: occurred.UnixMicro(),
			ReceivedAt: received.UnixMicro(), Source: "web", UserID: "u-1", Properties: "{}", Partition: p, Offset: off}
	}
	res, err := store.LoadLive(ctx, warehouse.LoadInput{
		Rows: []event.Row{
			row(0, 0, inHour, now.Add(-30*time.Second)),
			row(0, 1, inHour, now.Add(-20*time.Second)),
			row(0, 2, hour.Add(-2*time.Hour), now.Add(-10*time.Second)), // the newest received, a late event
			row(1, 0, inHour, now.Add(-40*time.Second)),
		},
		Sources: []string{"bronze/events/a.ndjson", "bronze/events/b.ndjson"},
		Topic:   topic, Offsets: map[int32]int64{0: 3, 1: 1},
	})
	if err != nil || res.Inserted != 4 {
		t.Fatalf("LoadLive: %+v, %v", res, err)
	}
	// Lake index: 8 records arrived this hour in bronze (one quarantined).
	// silver.events holds gold's rows (no load is pending for it): 3 for
	// this event hour and 1 for two hours ago.
	for _, o := range []warehouse.BronzeObject{
		{Topic: topic, Partition: 0, First: 0, Last: 4, Records: 5, Bytes: 100, Key: "bronze/p0-0-4", ArrivedAt: inHour, Cleaned: 4, Quarantined: 1},
		{Topic: topic, Partition: 1, First: 0, Last: 2, Records: 3, Bytes: 60, Key: "bronze/p1-0-2", ArrivedAt: inHour, Cleaned: 3},
		{Topic: topic, Partition: 1, First: 3, Last: 3, Records: 1, Bytes: 60, Key: "bronze/old", ArrivedAt: hour.Add(-10 * time.Hour), Cleaned: 1},
	} {
		if _, err := store.RecordBronze(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.RecordQuarantine(ctx, []warehouse.QuarantineEntry{
		{Topic: topic, Partition: 0, Offset: 4, Key: "quarantine/q1", Reason: "bad JSON", Timestamp: inHour},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Pool().Exec(ctx, `INSERT INTO pipeline.loads (kind, day_from, day_to, time_zone, rows_seen, rows_inserted, rows_deleted, started_at, finished_at)
		VALUES ('backfill', '2026-11-01', '2026-11-03', 'UTC', 7, 6, 9, $1, $2)`, now.Add(-3*time.Hour), now.Add(-3*time.Hour+1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordApplied(ctx, "conduit", "events", json.RawMessage(`{"particoes":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordFailed(ctx, "archive", "datalake", json.RawMessage(`{}`), "bucket: access denied"); err != nil {
		t.Fatal(err)
	}
	return fixture{pool: store.Pool(), brokers: brokers, now: now, hour: hour}
}

func (f fixture) source() status.Source {
	return status.Source{DB: f.pool, Brokers: f.brokers, Topic: topic, Now: func() time.Time { return f.now }}
}

func TestSnapshot(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	snap, err := f.source().Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "OK: gold is 10s fresh, lag 4"; snap.Verdict != want || !snap.OK {
		t.Errorf("verdict %q (ok %v), want %q", snap.Verdict, snap.OK, want)
	}
	if snap.Freshness.Age != 10*time.Second || snap.Freshness.AgeSeconds != 10 || !snap.Freshness.NewestReceived.Equal(f.now.Add(-10*time.Second)) {
		t.Errorf("freshness %+v", snap.Freshness)
	}
	if !snap.Freshness.NewestOccurred.Equal(f.hour.Add(time.Second)) {
		t.Errorf("newest occurred %v, want %v", snap.Freshness.NewestOccurred, f.hour.Add(time.Second))
	}
	wantLag := []status.PartitionLag{{Partition: 0, End: 5, Next: 3, Lag: 2, Stored: true}, {Partition: 1, End: 3, Next: 1, Lag: 2, Stored: true}, {Partition: 2, End: 0, Next: 0, Lag: 0}}
	if len(snap.Lag) != 3 || snap.LagTotal != 4 {
		t.Fatalf("lag %+v total %d", snap.Lag, snap.LagTotal)
	}
	for i, w := range wantLag {
		g := snap.Lag[i]
		g.Updated = time.Time{}
		if g != w {
			t.Errorf("lag[%d] = %+v, want %+v", i, g, w)
		}
	}
	if snap.KafkaError != "" {
		t.Errorf("kafka error %q", snap.KafkaError)
	}

	// Throughput: 12 five-minute buckets ending with now's; the live load's
	// 4 rows in the bucket of its finish time.
	if len(snap.Throughput) != status.Buckets || snap.ThroughputTotal != 4 {
		t.Fatalf("throughput %+v total %d", snap.Throughput, snap.ThroughputTotal)
	}
	if got, want := snap.Throughput[11].Start, f.now.Truncate(5*time.Minute); !got.Equal(want) {
		t.Errorf("last bucket starts %v, want %v", got, want)
	}
	if len(snap.Loads) != 2 {
		t.Fatalf("loads %+v", snap.Loads)
	}
	live := snap.Loads[1]
	if live.Kind != "live" || live.Seen != 4 || live.Inserted != 4 || live.Duplicate != 0 || live.Sources != 2 || live.Finished.IsZero() {
		t.Errorf("live load %+v", live)
	}
	for i, b := range snap.Throughput {
		want := int64(0)
		if !live.Finished.Before(b.Start) && live.Finished.Before(b.Start.Add(5*time.Minute)) {
			want = 4
		}
		if b.Events != want {
			t.Errorf("bucket %d (%v) = %d, want %d (load finished %v)", i, b.Start, b.Events, want, live.Finished)
		}
	}

	// Layers, newest hour first.
	if len(snap.Layers) != status.DefaultHours {
		t.Fatalf("layers %+v", snap.Layers)
	}
	want := map[int]status.HourCounts{
		0: {Hour: f.hour, Bronze: 8, Quarantined: 1, Silver: 3, Gold: 3},
		2: {Hour: f.hour.Add(-2 * time.Hour), Silver: 1, Gold: 1},
	}
	for i, h := range snap.Layers {
		w, ok := want[i]
		if !ok {
			w = status.HourCounts{Hour: f.hour.Add(-time.Duration(i) * time.Hour)}
		}
		if !h.Hour.Equal(w.Hour) || h.Bronze != w.Bronze || h.Quarantined != w.Quarantined || h.Silver != w.Silver || h.Gold != w.Gold {
			t.Errorf("layers[%d] = %+v, want %+v", i, h, w)
		}
	}

	bf := snap.Loads[0]
	if bf.Kind != "backfill" || len(snap.Backfills) != 1 || snap.Backfills[0] != bf {
		t.Fatalf("backfills %+v loads %+v", snap.Backfills, snap.Loads)
	}
	if bf.DayFrom != "2026-11-01" || bf.DayTo != "2026-11-03" || bf.TimeZone != "UTC" || bf.Deleted != 9 || bf.Inserted != 6 || bf.Duration() != 1500*time.Millisecond {
		t.Errorf("backfill %+v", bf)
	}
	if len(snap.Catalog) != 2 || snap.Catalog[0].Kind != "archive" || snap.Catalog[0].Status != "failed" || snap.Catalog[0].Error != "bucket: access denied" ||
		snap.Catalog[1].Name != "events" || snap.Catalog[1].Status != "applied" || snap.Catalog[1].AppliedAt.IsZero() {
		t.Errorf("catalog %+v", snap.Catalog)
	}

	text := snap.Text()
	t.Logf("pipeline status:\n%s", text)
	if first, _, _ := strings.Cut(text, "\n"); first != "OK: gold is 10s fresh, lag 4" {
		t.Errorf("first line %q", first)
	}
	lines := strings.Split(text, "\n")
	find := func(prefix string) []string {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return strings.Fields(l)
			}
		}
		t.Errorf("no line starting with %q in\n%s", prefix, text)
		return nil
	}
	if got := find("total"); strings.Join(got, " ") != "total 4" {
		t.Errorf("total line %q", got)
	}
	if got := find("0  "); strings.Join(got, " ") != "0 5 3 2" {
		t.Errorf("partition 0 line %q", got)
	}
	if got := find(f.hour.Format("2006-01-02 15:00")); strings.Join(got[2:], " ") != "8 1 3 3" {
		t.Errorf("current hour line %q", got)
	}
	if got := find("newest event in gold"); !strings.Contains(strings.Join(got, " "), "10s ago received "+f.now.Add(-10*time.Second).Format("2006-01-02 15:04:05Z")) {
		t.Errorf("freshness line %q", got)
	}
	if !strings.Contains(text, "2026-11-01..2026-11-03 UTC") || !strings.Contains(text, "failed: bucket: access denied") {
		t.Errorf("backfill or catalog missing:\n%s", text)
	}
	spark := []rune(strings.Fields(find(snap.Throughput[0].Start.Format("15:04"))[1])[0])
	if len(spark) != 12 || strings.Count(string(spark), "█") != 1 || strings.Count(string(spark), "▁") != 11 {
		t.Errorf("sparkline %q", string(spark))
	}

	// Five minutes later with nothing loaded: stale, and says where.
	src := f.source()
	src.Now = func() time.Time { return f.now.Add(5 * time.Minute) }
	stale, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var since [2]string
	for i, p := range stale.Lag[:2] {
		since[i] = p.Updated.Format("15:04:05Z")
	}
	if want := fmt.Sprintf("STALE: gold is 5m10s fresh, lag 4 (data stopped in Kafka: p0 at offset 3 since %s, p1 at offset 1 since %s)", since[0], since[1]); stale.Verdict != want || stale.OK {
		t.Errorf("verdict %q, want %q", stale.Verdict, want)
	}

	// Kafka unreachable: the warehouse part still shows, the verdict says so.
	src = f.source()
	src.Brokers = []string{"127.0.0.1:1"}
	down, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if down.OK || !strings.HasPrefix(down.Verdict, "UNKNOWN: gold is 10s fresh, lag unknown (Kafka: ") || down.Layers[0].Gold != 3 {
		t.Errorf("kafka down: %q %+v", down.Verdict, down.Layers[0])
	}
}

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want string
	}{
		{[]int64{0, 0, 0}, "▁▁▁"},
		{[]int64{0, 1, 7, 100}, "▁▂▂█"},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8}, "▂▃▄▅▆▇██"}, // any traffic shows above ▁
	} {
		if got := status.Sparkline(c.in); got != c.want {
			t.Errorf("Sparkline(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEmptyPipeline(t *testing.T) {
	store, _ := streamtest.Database(t)
	_, brokers := streamtest.Kafka(t, topic, 2)
	snap, err := status.Source{DB: store.Pool(), Brokers: brokers}.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Verdict != "OK: gold is empty, lag 0" || snap.ThroughputTotal != 0 || len(snap.Loads) != 0 || len(snap.Lag) != 2 {
		t.Errorf("%+v", snap)
	}
	_ = snap.Text()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	f := setup(t)
	srv := httptest.NewServer(status.Handler(f.source()))
	defer srv.Close()
	code, body := get(t, srv.URL+"/status")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, s := range []string{
		`<meta http-equiv="refresh" content="10">`,
		`<p id="verdict" class="verdict ok">OK: gold is 10s fresh, lag 4</p>`,
		`<td id="freshness-age">10s ago</td>`,
		`<td id="lag-total">4</td>`,
		`<tr class="lagging"><td>0</td><td>5</td><td>3</td><td>2</td>`,
		`<tr><td>` + f.hour.Format("2006-01-02 15:00") + `</td><td>8</td><td>1</td><td>3</td><td>3</td></tr>`,
		`<svg id="throughput"`, `events</title></rect>`,
		`2026-11-01..2026-11-03 UTC`, `failed: bucket: access denied`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if strings.Contains(body, "http://") && strings.Contains(body, "src=") {
		t.Errorf("page loads external assets")
	}
	if n := strings.Count(body, `<rect class="bar"`); n != 12 {
		t.Errorf("%d bars, want 12", n)
	}
	code, body = get(t, srv.URL+"/status?format=json")
	var snap status.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); code != 200 || err != nil || snap.LagTotal != 4 || snap.Freshness.AgeSeconds != 10 {
		t.Errorf("json %d %v: %s", code, err, body)
	}

	// A broken database is a 503 that says so.
	bad := f.source()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	bad.DB = pool
	srv2 := httptest.NewServer(status.Handler(bad))
	defer srv2.Close()
	if code, body := get(t, srv2.URL); code != 503 || !strings.Contains(body, "UNKNOWN: the warehouse cannot be read") {
		t.Errorf("db down: %d %s", code, body)
	}
}

// TestPageInChromium renders /status in headless Chromium (Debian's chromium
// package) and checks what the DOM shows.
func TestPageInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: Debian's chromium is not installed (apt-get install -y chromium); the page was not rendered in a browser")
	}
	f := setup(t)
	srv := httptest.NewServer(status.Handler(f.source()))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", srv.URL+"/status")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, stderr)
	}
	dom := string(out)
	for _, s := range []string{
		`id="verdict" class="verdict ok">OK: gold is 10s fresh, lag 4</p>`,
		`<td id="freshness-age">10s ago</td>`,
		`<td id="lag-total">4</td>`,
		`<svg id="throughput"`,
	} {
		if !strings.Contains(dom, s) {
			t.Errorf("rendered DOM lacks %q:\n%s", s, dom)
		}
	}
	// The browser built the SVG: 12 bars (rect elements) in the DOM.
	if n := strings.Count(dom, `<rect class="bar"`); n != 12 {
		t.Errorf("rendered DOM has %d bars, want 12", n)
	}
}

// alerting adds what the SLOMonitor writes while a partition's worker is
// down: bad freshness measurements, an open page, a resolved alert, and the
// API's accepted counts ahead of bronze.
func alerting(t *testing.T, f fixture) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO pipeline.slo_measurements (slo, measured_at, value, objective, good, detail) VALUES
			('freshness', $1, 312, 60, false, 'no live load in the last 1m0s; data stopped at partition 1 offset 1: oldest waiting record arrived 5m12s ago; lag 2 on p1'),
			('completeness', $1, 0, 0, true, '6 hours complete through every layer'),
			('error_rate', $1, 0.004, 0.01, true, '4 of 1000 records quarantined')`, []any{f.now}},
		{`INSERT INTO pipeline.alerts (slo, severity, opened_at, summary, burn_short, burn_long, notified_at) VALUES
			('freshness', 'page', $1, 'SLO freshness breached (value 312, objective 60): data stopped at partition 1 offset 1', 100, 20, $1)`, []any{f.now.Add(-4 * time.Minute)}},
		{`INSERT INTO pipeline.alerts (slo, severity, opened_at, resolved_at, summary, burn_short, burn_long) VALUES
			('error_rate', 'ticket', $1, $2, 'SLO error_rate breached', 10, 7)`, []any{f.now.Add(-3 * time.Hour), f.now.Add(-2 * time.Hour)}},
		{`INSERT INTO pipeline.api_accepted (hour, instance, accepted) VALUES ($1, 'a', 6), ($1, 'b', 4)`, []any{f.hour}},
		{`INSERT INTO pipeline.stream_arrivals (topic, hour, records, quarantined, cleaned, inserted) VALUES ($2, $1, 8, 1, 7, 6)`, []any{f.hour, topic}},
	} {
		if _, err := f.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAlerts(t *testing.T) {
	f := setup(t)
	alerting(t, f)
	snap, err := f.source().Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.OK || !strings.HasPrefix(snap.Verdict, "ALERT: freshness (page) open · ") {
		t.Errorf("verdict %q", snap.Verdict)
	}
	if snap.OpenAlerts != 1 || len(snap.Alerts) != 2 || !snap.Alerts[0].Open() || snap.Alerts[1].Open() {
		t.Errorf("alerts %+v", snap.Alerts)
	}
	if len(snap.SLOs) != 3 {
		t.Errorf("SLOs %+v", snap.SLOs)
	}
	a := snap.Arrivals[0]
	if a.Accepted != 10 || a.Records != 8 || a.Waiting() != 2 || a.Duplicates() != 1 {
		t.Errorf("arrival %+v", a)
	}
	text := snap.Text()
	for _, s := range []string{"OPEN", "data stopped at partition 1 offset 1", "312.0s", "lag 2 on p1", "NO"} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
}

// TestAlertPageInChromium renders the page of a pipeline with an open alert.
func TestAlertPageInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: Debian's chromium is not installed (apt-get install -y chromium); the page was not rendered in a browser")
	}
	f := setup(t)
	alerting(t, f)
	srv := httptest.NewServer(status.Handler(f.source()))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", srv.URL+"/status").Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, s := range []string{
		`class="verdict bad">ALERT: freshness (page) open`,
		`<td>OPEN</td><td class="detail">SLO freshness breached (value 312, objective 60): data stopped at partition 1 offset 1</td>`,
		`<td>freshness</td><td>312.0s</td><td>60.0s</td><td>NO</td>`,
		`<title>ALERT · pipeline status</title>`,
	} {
		if !strings.Contains(dom, s) {
			t.Errorf("rendered DOM lacks %q:\n%s", s, dom)
		}
	}
}
