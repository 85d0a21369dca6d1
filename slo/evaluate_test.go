package slo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/slo"
	"github.com/acme/pipeline/warehouse"
)

// rig is the real stack the evaluator measures: kfake, versitygw and
// PostgreSQL, with the stream's activities run by hand (the "worker").
type rig struct {
	t       *testing.T
	brokers []string
	store   *warehouse.Store
	acts    *activities.Stream
	offsets map[int32]int64
	ev      *slo.Evaluator
	hooks   *webhook
	logs    *bytes.Buffer
}

type webhook struct {
	mu   sync.Mutex
	got  []slo.Notification
	fail bool
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		http.Error(rw, "down", http.StatusBadGateway)
		return
	}
	var n slo.Notification
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.got = append(w.got, n)
}

func (w *webhook) statuses() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []string
	for _, n := range w.got {
		s = append(s, n.Status+":"+n.Alert.SLO)
	}
	return s
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	_, brokers := streamtest.Kafka(t, "events", 3)
	_, s3 := streamtest.Lake(t)
	store, dbURL := streamtest.Database(t)
	acts, err := activities.NewStream(ctx, activities.StreamConfig{Lake: s3.LakeConfig("datalake"), Silver: silvertest.Table(t, dbURL, s3, "datalake"), Brokers: brokers,
		Warehouse: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kafkaread.New(kafkaread.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	hooks := &webhook{}
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	logs := &bytes.Buffer{}
	ev, err := slo.NewEvaluator(slo.EvaluatorConfig{Store: store, Kafka: kc, Webhook: srv.URL, StatusURL: "http://127.0.0.1:8080/status",
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, brokers: brokers, store: store, acts: acts, offsets: map[int32]int64{0: 0, 1: 0, 2: 0}, ev: ev, hooks: hooks, logs: logs}
}

// stream runs one cycle of the stream's activity over every partition, as
// the worker would.
func (r *rig) stream(offsets map[int32]int64) activities.CompactCycleResult {
	r.t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(r.acts)
	v, err := env.ExecuteActivity(r.acts.CompactCycle, activities.CompactCycleInput{Topic: "events", Offsets: offsets,
		MaxRecords: 100_000, FlushWait: 200 * time.Millisecond, MaxFlushes: 1})
	if err != nil {
		r.t.Fatal(err)
	}
	var res activities.CompactCycleResult
	if err := v.Get(&res); err != nil {
		r.t.Fatal(err)
	}
	for _, p := range res.Partitions {
		r.offsets[p.Partition] = p.Next
	}
	return res
}

func (r *rig) evaluate(c slo.Config, at time.Time) slo.Result {
	r.t.Helper()
	res, err := r.ev.Evaluate(context.Background(), c, at)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

func measurement(t *testing.T, res slo.Result, name string) warehouse.Measurement {
	t.Helper()
	for _, m := range res.Measurements {
		if m.SLO == name {
			return m
		}
	}
	t.Fatalf("no %s measurement in %+v", name, res)
	return warehouse.Measurement{}
}

// TestFreshnessBreachAlertsOnce holds the stream's worker down while events
// wait in Kafka: the freshness SLO breaches with where data stopped, one
// alert opens (one log line, one webhook call) however many evaluations
// follow, and it resolves once the worker is back.
func TestFreshnessBreachAlertsOnce(t *testing.T) {
	r := newRig(t)
	now := time.Now().UTC()
	msgs, ex := streamtest.Mix(600, 3, now.Truncate(time.Hour), 1)
	streamtest.Produce(t, r.brokers, "events", msgs)
	r.stream(r.offsets)
	streamtest.CheckGold(t, r.store.Pool(), ex)

	cfg := slo.Config{Interval: time.Second, FreshnessObjective: 3 * time.Second, Alerts: true,
		ErrorRateObjective: 0.5, // the mix quarantines ~1%; this test is about freshness
		Policies:           []slo.Policy{{Severity: "page", Short: 5 * time.Second, Long: 30 * time.Second, Factor: 14.4}}}
	// Past the catch-up's window (Evaluate truncates to the second, so two
	// intervals on): it holds no load, whose rows would measure as old as
	// the mix's received_at (up to an hour back), and nothing waits in
	// Kafka.
	t0 := time.Now().UTC().Add(2 * cfg.Interval)
	if m := measurement(t, r.evaluate(cfg, t0), slo.Freshness); !m.Good {
		t.Fatalf("fresh stream measured bad: %+v", m)
	}

	// The worker is down: new events wait in Kafka.
	more, _ := streamtest.Mix(90, 3, now.Truncate(time.Hour), 2)
	streamtest.Produce(t, r.brokers, "events", more)
	waitingFrom := map[int32]int64{}
	for p, o := range r.offsets {
		waitingFrom[p] = o
	}
	var opened int
	for i := range 6 {
		at := t0.Add(time.Duration(5+i) * time.Second)
		res := r.evaluate(cfg, at)
		m := measurement(t, res, slo.Freshness)
		if m.Good || m.Value <= cfg.FreshnessObjective.Seconds() {
			t.Fatalf("evaluation %d: freshness %+v, want a breach", i, m)
		}
		if !strings.Contains(m.Detail, "data stopped at partition") {
			t.Fatalf("freshness detail does not say where data stopped: %q", m.Detail)
		}
		opened += len(res.Opened)
		if len(res.Open) != 1 || res.Open[0].SLO != slo.Freshness {
			t.Fatalf("evaluation %d: open alerts %+v, want the freshness page", i, res.Open)
		}
	}
	if opened != 1 {
		t.Fatalf("alert opened %d times, want once", opened)
	}
	if got := r.hooks.statuses(); len(got) != 1 || got[0] != "firing:freshness" {
		t.Fatalf("webhook got %v, want one firing freshness alert", got)
	}
	if n := strings.Count(r.logs.String(), "SLO alert firing"); n != 1 {
		t.Fatalf("%d firing log lines, want 1:\n%s", n, r.logs.String())
	}
	open, _ := r.store.OpenAlerts(context.Background())
	if len(open) != 1 || !strings.Contains(open[0].Summary, "data stopped at partition") || open[0].NotifiedAt.IsZero() {
		t.Fatalf("open alert %+v", open)
	}

	// The worker is back: the waiting events load, the alert resolves once
	// the short window holds only good measurements.
	r.stream(r.offsets)
	var resolved int
	for i := range 7 {
		res := r.evaluate(cfg, t0.Add(time.Duration(11+i)*time.Second))
		resolved += len(res.Resolved)
	}
	if resolved != 1 {
		t.Fatalf("resolved %d times, want once", resolved)
	}
	if got := r.hooks.statuses(); len(got) != 2 || got[1] != "resolved:freshness" {
		t.Fatalf("webhook got %v, want firing then resolved", got)
	}
	all, _ := r.store.RecentAlerts(context.Background(), 10)
	if len(all) != 1 || all[0].ResolvedAt.IsZero() {
		t.Fatalf("alerts %+v, want one, resolved", all)
	}
}

// TestCompletenessNamesTheLayer checks the stream's accounting per arrival
// hour exactly (a replayed batch counts once), and that accepted events
// missing from bronze breach completeness naming the hour and the layer.
func TestCompletenessNamesTheLayer(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	msgs, ex := streamtest.Mix(900, 3, hour, 3)
	streamtest.Produce(t, r.brokers, "events", msgs)
	start := map[int32]int64{0: 0, 1: 0, 2: 0}
	r.stream(start)
	streamtest.CheckGold(t, r.store.Pool(), ex)
	// A retried cycle after its commit: the stored offsets are past it, so
	// the tally must not count its records again.
	r.stream(map[int32]int64{0: 0, 1: 0, 2: 0})

	at := time.Now().UTC()
	acc, err := r.store.Accounting(ctx, "events", at.Add(-6*time.Hour), at.Add(time.Hour), at.Add(-6*time.Hour), at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var records, quarantined, inserted, gold, qindex int64
	for _, h := range acc {
		records += h.Records
		quarantined += h.Quarantined
		inserted += h.Inserted
		gold += h.Gold
		qindex += h.QuarantineIndex
		if h.Gold != h.Inserted {
			t.Errorf("hour %s: gold %d, inserted %d", h.Hour, h.Gold, h.Inserted)
		}
	}
	if records != int64(len(msgs)) || quarantined != int64(ex.Poison) || inserted != int64(ex.Distinct) || qindex != quarantined {
		t.Fatalf("accounting: records %d (want %d), quarantined %d (want %d, index %d), inserted %d (want %d)",
			records, len(msgs), quarantined, ex.Poison, qindex, inserted, ex.Distinct)
	}

	cfg := slo.Config{Lateness: time.Minute, ErrorRateObjective: 0.5}
	if m := measurement(t, r.evaluate(cfg, at), slo.Completeness); !m.Good {
		t.Fatalf("complete stream measured incomplete: %+v", m)
	}
	// The API says it accepted 7 more events in that hour than reached bronze.
	var inHour int64
	for _, h := range acc {
		if h.Hour.Equal(hour) {
			inHour = h.Records
		}
	}
	if err := r.store.RecordAccepted(ctx, "api-test", map[time.Time]int64{hour: inHour + 7}); err != nil {
		t.Fatal(err)
	}
	m := measurement(t, r.evaluate(cfg, at.Add(time.Second)), slo.Completeness)
	if m.Good || m.Value != 7 || !strings.Contains(m.Detail, hour.Format("2006-01-02T15Z")) || !strings.Contains(m.Detail, "not in bronze") {
		t.Fatalf("completeness %+v, want 7 missing in bronze in hour %s", m, hour)
	}
	if rate := measurement(t, r.evaluate(cfg, at.Add(2*time.Second)), slo.ErrorRate); rate.Value <= 0 || !strings.Contains(rate.Detail, "quarantined") {
		t.Fatalf("error rate %+v, want the quarantined share", rate)
	}
}
