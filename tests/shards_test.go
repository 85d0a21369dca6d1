package tests

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/internal/shards"
	"github.com/acme/pipeline/internal/status"
	"github.com/acme/pipeline/slo"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/workflows"
)

// TestStoppedShardPages covers issue 13 item 3 on the real Temporal server
// and PostgreSQL: a stream shard that stops (here terminated, as an
// operator or a failed deployment would) is measured by the next SLO
// evaluation, pages at once through the stream_running alert, shows on the
// status snapshot (its verdict, its shards section), and starting the
// stream again, as `pipeline provision` does, brings it back and resolves
// the alert.
func TestStoppedShardPages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := dialTemporal(t)
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	topic := fmt.Sprintf("shards%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() {
		for i := range 2 {
			_ = tc.TerminateWorkflow(context.Background(), workflows.StreamWorkflowID(topic, i, 2), "", "test done")
		}
	})
	lister, err := shards.NewLister(tc)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := slo.NewEvaluator(slo.EvaluatorConfig{Store: store, Shards: lister, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := slo.Config{Topic: topic, Alerts: true}
	at := time.Now().UTC().Truncate(time.Second)
	// evaluate waits until Temporal's visibility shows want (it trails the
	// change a little), then runs one evaluation a minute after the last.
	evaluate := func(want string) warehouse.Measurement {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			ss, err := lister.List(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			for _, s := range ss {
				states = append(states, s.State)
			}
			if strings.Join(states, ",") == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("shards %v, want %s", states, want)
			}
		}
		at = at.Add(time.Minute)
		res, err := ev.Evaluate(ctx, cfg, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Measurements {
			if m.SLO == slo.StreamRunning {
				return m
			}
		}
		t.Fatal("no stream_running measurement")
		return warehouse.Measurement{}
	}
	openAlert := func() *warehouse.Alert {
		alerts, err := store.OpenAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.SLO == slo.StreamRunning {
				return &a
			}
		}
		return nil
	}
	snapshot := func() status.Snapshot {
		snap, err := status.Source{DB: store.Pool(), Topic: topic}.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}

	if _, err := starter.StartStream(ctx, tc, workflows.StreamCompactionInput{Topic: topic, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if m := evaluate("running,running"); !m.Good || m.Value != 0 {
		t.Fatalf("both shards running: %+v", m)
	}

	stopped := workflows.StreamWorkflowID(topic, 1, 2)
	if err := tc.TerminateWorkflow(ctx, stopped, "", "deploy gone wrong"); err != nil {
		t.Fatal(err)
	}
	m := evaluate("running,terminated")
	if m.Good || m.Value != 1 || !strings.Contains(m.Detail, stopped) || !strings.Contains(m.Detail, "deploy gone wrong") ||
		!strings.Contains(m.Detail, "pipeline provision") {
		t.Fatalf("one shard terminated: %+v", m)
	}
	a := openAlert()
	if a == nil || a.Severity != "page" || !strings.Contains(a.Summary, stopped) {
		t.Fatalf("no page alert for the stopped shard: %+v", a)
	}
	snap := snapshot()
	text := snap.Text()
	if snap.OK || !strings.Contains(snap.Verdict, "STREAM STOPPED: "+stopped+" terminated") ||
		!strings.Contains(text, "TERMINATED") || !strings.Contains(text, "deploy gone wrong") {
		t.Fatalf("status does not show the stopped shard:\n%s", text)
	}
	t.Logf("verdict: %s", snap.Verdict)

	// What `pipeline provision` does: start the stream; the stopped shard
	// starts again and the running one is kept.
	if _, err := starter.StartStream(ctx, tc, workflows.StreamCompactionInput{Topic: topic, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if m := evaluate("running,running"); !m.Good {
		t.Fatalf("after the restart: %+v", m)
	}
	if a := openAlert(); a != nil {
		t.Fatalf("the alert is still open after the restart: %+v", a)
	}
	if snap := snapshot(); len(snap.StoppedShards()) != 0 || strings.Contains(snap.Verdict, "STOPPED") {
		t.Fatalf("status after the restart: %s", snap.Verdict)
	}
}
