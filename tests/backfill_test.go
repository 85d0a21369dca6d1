package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

// TestBackfillOnTemporal writes bronze objects and their index rows for one
// day of a test-only topic (with a duplicate event_id, a poison record, an
// event of the day before and an object of another day), runs Backfill on
// the real dev server with an in-process worker, and checks silver, gold and
// the marts against figures worked out by hand. Then it deletes the day's
// gold rows and runs the Backfill with the Temporal CLI: gold comes back
// exactly; a third run leaves identical tables and objects.
func TestBackfillOnTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close) // after the worker stops (clean-ups run last in, first out)
	lk, err := lake.New(lake.Config{Endpoint: stack.S3Endpoint, Region: stack.Region, AccessKeyID: stack.AccessKeyID,
		SecretAccessKey: stack.SecretAccessKey, Bucket: stack.Bucket, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	topic := "backfill-test-" + hex.EncodeToString(rnd[:])
	const dayText = "2019-06-15"
	day := time.Date(2019, 6, 15, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	ev := func(id, typ, user string, occurred, received time.Time, props string) []byte {
		return fmt.Appendf(nil, `{"event_id":%q,"type":%q,"occurred_at":%q,"received_at":%q,"source":"web","user_id":%q,"properties":%s}`,
			id, typ, occurred.Format(time.RFC3339Nano), received.Format(time.RFC3339Nano), user, props)
	}
	const (
		e1 = "01970000-0000-7000-8000-000000000001"
		e2 = "01970000-0000-7000-8000-000000000002"
		e3 = "01970000-0000-7000-8000-000000000003"
		e4 = "01970000-0000-7000-8000-000000000004"
		e5 = "01970000-0000-7000-8000-000000000005"
		e6 = "01970000-0000-7000-8000-000000000006"
		e7 = "01970000-0000-7000-8000-000000000007"
	)
	auditProps := `{"actor":"ålice 🚀","action":"login","outcome":"failure","note":"'; DROP TABLE gold.events; --"}`
	recs1 := []lake.Record{ // partition 0, arrived 10:05
		{Offset: 0, Value: ev(e1, "page_view", "u1", at(9, 0), at(10, 0), `{"path":"/pricing"}`)},
		{Offset: 1, Value: ev(e2, "payment.captured", "u1", at(10, 30), at(10, 31), `{"amount":"12.50","currency":"EUR"}`)},
		{Offset: 2, Value: []byte(`{"type":"page_view","note":"poison: no event_id, no occurred_at"}`)},
		{Offset: 3, Value: ev(e1, "page_view", "u1", at(9, 0), at(10, 2), `{"path":"/retried"}`)}, // retry of e1: loses
		{Offset: 4, Value: ev(e3, "audit.login", "u3", at(10, 45), at(10, 46), auditProps)},
		{Offset: 5, Value: ev(e4, "page_view", "u4", at(-1, 30), at(10, 3), `{}`)}, // the day before
	}
	recs2 := []lake.Record{ // partition 1, arrived 11:00
		{Offset: 0, Value: ev(e5, "payment.refunded", "u1", at(11, 0), at(11, 1), `{"amount":"2.00","currency":"EUR"}`)},
		{Offset: 1, Value: ev(e6, "page_view", "u2", at(23, 59), at(23, 59), `{"q":"ünïcödé"}`)},
		{Offset: 2, Value: ev(e2, "payment.captured", "u1", at(10, 30), at(10, 30), `{"amount":"12.50","currency":"EUR"}`)}, // e2 received earlier here: wins
	}
	recs3 := []lake.Record{ // partition 0, another day only
		{Offset: 6, Value: ev(e7, "page_view", "u7", at(50, 0), at(50, 0), `{}`)},
	}
	put := func(p int32, recs []lake.Record, arrival time.Time, cleaned int, hours ...time.Time) string {
		return putBronze(t, ctx, lk, store, topic, p, recs, arrival, cleaned, hours)
	}
	put(0, recs1, at(10, 5), 5, at(-1, 0), at(9, 0), at(10, 0))
	put(1, recs2, at(11, 0), 3, at(11, 0), at(23, 0))
	put(0, recs3, at(50, 0), 1, at(50, 0))
	tc := dialTemporal(t)
	silverCfg := ensureSilver(t)
	bf, err := activities.NewBackfiller(activities.BackfillerConfig{Lake: lk, Store: store,
		Running: activities.WorkflowRunning(tc), Silver: silverCfg})
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, worker.Config{Client: tc, Store: store, Backfiller: bf})

	in := workflows.BackfillInput{From: dayText, To: dayText, Topic: topic}
	backfill := func(in workflows.BackfillInput) workflows.BackfillResult {
		t.Helper()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.BatchQueue}, workflows.Backfill, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.BackfillResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	start, end := day, day.AddDate(0, 0, 1)
	count := func(table string) int64 {
		t.Helper()
		var n int64
		if err := store.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE occurred_at >= $1 AND occurred_at < $2", start, end).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// silver.events after a backfill: the day's five events, each once, from
	// the record gold kept (e2 from partition 1, received first).
	wantSilver := map[string][]string{
		e1: {`0/0 {"path": "/pricing"}`},
		e2: {`1/2 {"amount": "12.50", "currency": "EUR"}`},
		e3: {`0/4 {"note": "'; DROP TABLE gold.events; --", "actor": "ålice 🚀", "action": "login", "outcome": "failure"}`},
		e5: {`1/0 {"amount": "2.00", "currency": "EUR"}`},
		e6: {`1/1 {"q": "ünïcödé"}`},
	}
	// 1. Dry run: the plan, and nothing changes.
	dry := in
	dry.DryRun = true
	res := backfill(dry)
	if len(res.Days) != 1 {
		t.Fatalf("dry run: %+v", res)
	}
	d := res.Days[0]
	if !d.DryRun || d.BronzeObjects != 2 || d.Records != 9 || d.Quarantined != 1 || d.OtherDays != 1 || d.Duplicates != 2 || d.Rows != 5 ||
		d.SilverRows != 0 || d.GoldInserted != 0 {
		t.Fatalf("dry run day: %+v", d)
	}
	if n := count("gold.events"); n != 0 {
		t.Fatalf("dry run wrote %d gold rows", n)
	}
	if got := silvertest.Lineage(t, silverCfg, e1, e2, e3, e4, e5, e6, e7); len(got) != 0 {
		t.Fatalf("dry run changed silver.events: %v", got)
	}

	// 2. The backfill, on the in-process worker.
	res = backfill(in)
	d = res.Days[0]
	if d.Rows != 5 || d.GoldInserted != 5 || d.GoldPayments != 2 || d.GoldAudit != 1 || d.SilverRows != 5 || d.SilverSnap == 0 {
		t.Fatalf("backfill day: %+v", d)
	}
	checkGold := func(when string) {
		t.Helper()
		if e, p, a := count("gold.events"), count("gold.payments"), count("gold.audit_log"); e != 5 || p != 2 || a != 1 {
			t.Fatalf("%s: gold has %d events, %d payments, %d audit rows; want 5, 2, 1", when, e, p, a)
		}
		var part int32
		var path string
		if err := store.Pool().QueryRow(ctx, `SELECT kafka_partition FROM gold.events WHERE event_id = $1`, e2).Scan(&part); err != nil || part != 1 {
			t.Fatalf("%s: e2 from partition %d (%v); want 1, the first received", when, part, err)
		}
		if err := store.Pool().QueryRow(ctx, `SELECT properties->>'path' FROM gold.events WHERE event_id = $1`, e1).Scan(&path); err != nil || path != "/pricing" {
			t.Fatalf("%s: e1 path %q (%v); want /pricing, the first received", when, path, err)
		}
		var actor, note, outcome string
		if err := store.Pool().QueryRow(ctx, `SELECT actor, outcome, properties->>'note' FROM gold.audit_log WHERE event_id = $1`, e3).Scan(&actor, &outcome, &note); err != nil ||
			actor != "ålice 🚀" || outcome != "failure" || note != "'; DROP TABLE gold.events; --" {
			t.Fatalf("%s: audit row %q %q %q (%v)", when, actor, outcome, note, err)
		}
		var events, users, payments int64
		var gross, refunds, net string
		if err := store.Pool().QueryRow(ctx, `SELECT events, unique_users FROM gold.daily_product_metrics WHERE day = $1 AND event_type = 'page_view'`, dayText).Scan(&events, &users); err != nil || events != 2 || users != 2 {
			t.Fatalf("%s: page_view mart %d events %d users (%v); want 2 and 2", when, events, users, err)
		}
		if err := store.Pool().QueryRow(ctx, `SELECT payments, gross::text, refunds::text, net::text FROM gold.daily_revenue WHERE day = $1 AND currency = 'EUR'`, dayText).
			Scan(&payments, &gross, &refunds, &net); err != nil || payments != 1 || gross != "12.500000" || refunds != "2.000000" || net != "10.500000" {
			t.Fatalf("%s: EUR revenue %d %s %s %s (%v); want 1, 12.50, 2.00, 10.50", when, payments, gross, refunds, net, err)
		}
	}
	checkGold("in-process run")
	silverOf := func() map[string][]string {
		t.Helper()
		got := silvertest.Lineage(t, silverCfg, e1, e2, e3, e4, e5, e6, e7)
		if !maps.EqualFunc(got, wantSilver, slices.Equal) {
			t.Fatalf("silver.events holds %v, want %v", got, wantSilver)
		}
		return got
	}
	silverRows := silverOf()
	before := goldSnapshot(t, ctx, store, start, end, dayText)

	// 3. Delete the day's gold rows; the CLI command of the contract restores them.
	for _, table := range []string{"gold.events", "gold.payments", "gold.audit_log"} {
		if _, err := store.Pool().Exec(ctx, "DELETE FROM "+table+" WHERE occurred_at >= $1 AND occurred_at < $2", start, end); err != nil {
			t.Fatal(err)
		}
	}
	cli := func(id string) {
		t.Helper()
		input := fmt.Sprintf(`{"from":%q,"to":%q,"layers":["silver","gold","marts"],"topic":%q}`, dayText, dayText, topic)
		cmd := exec.CommandContext(ctx, filepath.Join(moduleRoot, "bin", "temporal"), "workflow", "start",
			"--type", "Backfill", "--task-queue", "batch-jobs", "--workflow-id", id,
			"--input", input, "--address", stack.TemporalAddress)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("temporal workflow start: %v\n%s", err, out)
		}
		var r workflows.BackfillResult
		if err := tc.GetWorkflow(ctx, id, "").Get(ctx, &r); err != nil {
			t.Fatalf("workflow %s: %v", id, err)
		}
		if len(r.Days) != 1 || r.Days[0].GoldInserted != 5 {
			t.Fatalf("workflow %s: %+v", id, r)
		}
		// temporal workflow query answers the progress query.
		out, err := exec.CommandContext(ctx, filepath.Join(moduleRoot, "bin", "temporal"), "workflow", "query",
			"--workflow-id", id, "--type", "progress", "--address", stack.TemporalAddress, "-o", "json").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(`"days_done": 1`)) && !bytes.Contains(out, []byte(`"days_done":1`)) {
			t.Fatalf("temporal workflow query: %v\n%s", err, out)
		}
	}
	cli("backfill-cli-1-" + topic)
	checkGold("after the CLI restore")
	if after := goldSnapshot(t, ctx, store, start, end, dayText); after != before {
		t.Fatalf("gold after the CLI restore differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// 4. Once more: identical tables and objects.
	cli("backfill-cli-2-" + topic)
	if again := goldSnapshot(t, ctx, store, start, end, dayText); again != before {
		t.Fatalf("gold after a rerun differs:\nbefore:\n%s\nafter:\n%s", before, again)
	}
	if again := silverOf(); !maps.EqualFunc(again, silverRows, slices.Equal) {
		t.Fatalf("silver changed on a rerun:\n%v\n%v", silverRows, again)
	}

	// 5. Gold and marts only: gold comes back from bronze, and silver.events
	// is rewritten with it.
	for _, table := range []string{"gold.events", "gold.payments", "gold.audit_log"} {
		if _, err := store.Pool().Exec(ctx, "DELETE FROM "+table+" WHERE occurred_at >= $1 AND occurred_at < $2", start, end); err != nil {
			t.Fatal(err)
		}
	}
	goldOnly := in
	goldOnly.Layers = []string{"gold", "marts"}
	if r := backfill(goldOnly); r.Days[0].GoldInserted != 5 || r.Days[0].BronzeObjects != 2 || r.Days[0].SilverRows != 5 {
		t.Fatalf("gold-only backfill: %+v", r.Days[0])
	}
	if again := goldSnapshot(t, ctx, store, start, end, dayText); again != before {
		t.Fatalf("gold rebuilt gold-only differs:\nbefore:\n%s\nafter:\n%s", before, again)
	}

	// 6. pipeline backfill: validation before starting, then a dry run that
	// renders progress and prints the workflow id.
	bin := filepath.Join(t.TempDir(), "pipeline")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/pipeline").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "backfill", "--from", "2019-06-16", "--to", dayText, "--temporal-address", stack.TemporalAddress).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "from: ") || !strings.Contains(string(out), "after to") {
		t.Fatalf("pipeline backfill with from after to: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, bin, "backfill", "--from", dayText, "--to", dayText, "--dry-run", "--topic", topic,
		"--temporal-address", stack.TemporalAddress).CombinedOutput()
	if err != nil {
		t.Fatalf("pipeline backfill --dry-run: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if id := lines[len(lines)-1]; id != "backfill-dry-run-"+dayText+"-"+dayText ||
		!strings.Contains(string(out), "2 bronze objects, 9 records, 5 rows") {
		t.Fatalf("pipeline backfill --dry-run printed:\n%s", out)
	}
	t.Logf("pipeline backfill --dry-run:\n%s", out)

	// 7. One rebuild of a day at a time. A paused backfill holds the day;
	// the same range again through pipeline backfill is refused by the
	// server (one id per range), another id through the Temporal CLI by the
	// day's lease, both naming the running workflow. Resumed, it rebuilds
	// the day exactly once.
	first, err := starter.StartBackfill(ctx, tc, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.SignalWorkflow(ctx, first.GetID(), first.GetRunID(), workflows.BackfillPauseSignal, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		leases, err := store.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(leases) == 1 && leases[0].RunID == first.GetRunID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first backfill holds no lease: %+v", leases)
		}
	}
	out, err = exec.CommandContext(ctx, bin, "backfill", "--from", dayText, "--to", dayText, "--topic", topic,
		"--temporal-address", stack.TemporalAddress).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running: workflow "+first.GetID()) {
		t.Fatalf("pipeline backfill of a running range: %v\n%s", err, out)
	}
	input := fmt.Sprintf(`{"from":%q,"to":%q,"topic":%q}`, dayText, dayText, topic)
	out, err = exec.CommandContext(ctx, filepath.Join(moduleRoot, "bin", "temporal"), "workflow", "execute",
		"--type", "Backfill", "--task-queue", "batch-jobs", "--workflow-id", "backfill-from-the-cli-"+topic,
		"--input", input, "--address", stack.TemporalAddress).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "by workflow "+first.GetID()) {
		t.Fatalf("temporal workflow execute of a held day: %v\n%s", err, out)
	}
	t.Logf("the second start from the CLI:\n%s", out)
	if err := tc.SignalWorkflow(ctx, first.GetID(), first.GetRunID(), workflows.BackfillResumeSignal, nil); err != nil {
		t.Fatal(err)
	}
	if r, err := starter.WaitBackfill(ctx, tc, first, nil); err != nil || len(r.Days) != 1 || r.Days[0].GoldInserted != 5 {
		t.Fatalf("the first backfill: %+v %v", r, err)
	}
	checkGold("after the refused starts")
	if again := goldSnapshot(t, ctx, store, start, end, dayText); again != before {
		t.Fatalf("gold after the refused starts differs:\nbefore:\n%s\nafter:\n%s", before, again)
	}
	if leases, err := store.Leases(ctx); err != nil || len(leases) != 0 {
		t.Fatalf("leases left: %+v %v", leases, err)
	}
}

// goldSnapshot renders the day's gold facts and marts without load ids and
// load times, one JSON row a line.
func goldSnapshot(t *testing.T, ctx context.Context, store *warehouse.Store, start, end time.Time, day string) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []struct{ table, where string }{
		{"gold.events", "occurred_at >= $1 AND occurred_at < $2 AND $3::text IS NOT NULL"},
		{"gold.payments", "occurred_at >= $1 AND occurred_at < $2 AND $3::text IS NOT NULL"},
		{"gold.audit_log", "occurred_at >= $1 AND occurred_at < $2 AND $3::text IS NOT NULL"},
		{"gold.daily_product_metrics", "day = $3::date AND $1::timestamptz IS NOT NULL AND $2::timestamptz IS NOT NULL"},
		{"gold.daily_revenue", "day = $3::date AND $1::timestamptz IS NOT NULL AND $2::timestamptz IS NOT NULL"},
		{"gold.daily_audit_summary", "day = $3::date AND $1::timestamptz IS NOT NULL AND $2::timestamptz IS NOT NULL"},
	} {
		var s string
		err := store.Pool().QueryRow(ctx, `SELECT coalesce(string_agg(j, E'\n' ORDER BY j), '') FROM (
			SELECT (to_jsonb(t) - 'load_id' - 'loaded_at' - 'built_at')::text AS j FROM `+q.table+` t WHERE `+q.where+`) AS r`,
			start, end, day).Scan(&s)
		if err != nil {
			t.Fatalf("snapshot %s: %v", q.table, err)
		}
		b.WriteString(q.table + ":\n" + s + "\n")
	}
	return b.String()
}

// putBronze writes recs as one bronze object of topic partition p, arrived at
// arrival, and records it in pipeline.bronze_objects, as the stream does:
// cleaned of them clean, into the event hours given.
func putBronze(t *testing.T, ctx context.Context, lk *lake.Store, store *warehouse.Store, topic string, p int32,
	recs []lake.Record, arrival time.Time, cleaned int, hours []time.Time) string {
	t.Helper()
	for i := range recs {
		recs[i].Partition, recs[i].Time = p, arrival
	}
	first, last := recs[0].Offset, recs[len(recs)-1].Offset
	key := lake.BronzeKey(topic, 1, p, first, last, arrival)
	data := lake.EncodeBronze(recs)
	if err := lk.Put(ctx, key, data, "application/x-ndjson"); err != nil {
		t.Fatal(err)
	}
	_, err := store.RecordBronze(ctx, warehouse.BronzeObject{Topic: topic, Partition: p, First: first, Last: last,
		Records: len(recs), Bytes: int64(len(data)), Key: key, ArrivedAt: arrival, Cleaned: cleaned,
		Quarantined: len(recs) - cleaned, MinOccurred: hours[0], MaxOccurred: hours[len(hours)-1], EventHours: hours})
	if err != nil {
		t.Fatal(err)
	}
	return key
}
