package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/segmentio/kafka-go"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

// provisionBlueprint returns the seed blueprint with its own topic and bucket
// names (so the other tests' events topic and datalake bucket are left
// alone) and the conduit's particoes set to partitions.
func provisionBlueprint(t *testing.T, topic, bucket string, partitions int) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(moduleRoot, "deploy", "blueprint.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range doc["recursos"].([]any) {
		r := r.(map[string]any)
		switch r["tipo"] {
		case "conduit":
			r["nome"] = topic
			r["config"].(map[string]any)["particoes"] = partitions
		case "archive":
			r["nome"] = bucket
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blueprint.Parse(out, "test copy of the seed"); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProvisionSeedBlueprint provisions a copy of the seed blueprint on the
// real stack through the Provision workflow, then checks that a second run
// changes nothing, that raising partitions to 24 adds them, that lowering
// them to 6 is refused with a message, and that the schedule exists.
func TestProvisionSeedBlueprint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tc, err := worker.Dial(stack.TemporalAddress, "default", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	s3c := devstack.S3Client(stack.S3Endpoint, stack.Region, stack.AccessKeyID, stack.SecretAccessKey)
	prov, err := activities.NewProvisioner(activities.ProvisionerConfig{
		Store: store, KafkaBrokers: stack.KafkaBrokers, S3: s3c, S3Endpoint: stack.S3Endpoint, Temporal: tc,
	})
	if err != nil {
		t.Fatal(err)
	}

	// A fresh task queue per run (see STACK-FACTS); the workflow's activities
	// run on the workflow's queue.
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	queue := "provision-test-" + suffix
	w := sdkworker.New(tc, queue, sdkworker.Options{})
	w.RegisterWorkflow(workflows.Provision)
	w.RegisterActivity(prov)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	topic, bucket := "events-provision-"+suffix, "datalake-provision-"+suffix
	provision := func(t *testing.T, partitions int, dry bool) (workflows.ProvisionResult, error) {
		t.Helper()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "provision-test-" + suffix, TaskQueue: queue,
			WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		}, workflows.Provision, workflows.ProvisionInput{Blueprint: provisionBlueprint(t, topic, bucket, partitions), DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.ProvisionResult
		err = run.Get(ctx, &res)
		return res, err
	}
	partitionsOf := func(t *testing.T) int {
		t.Helper()
		conn, err := kafka.DialContext(ctx, "tcp", stack.KafkaBrokers[0])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ps, err := conn.ReadPartitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}

	// From nothing: every resource is created, in dependency order.
	res, err := provision(t, 12, false)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	t.Logf("first run plan:\n%s\n%s", res.PlanText, res.Summary())
	if n := res.Plan.Count(blueprint.ActionCreate); n != 8 || len(res.Applied) != 8 {
		t.Fatalf("first run: %d creates, %d applied; want 8 and 8", n, len(res.Applied))
	}
	var kinds []string
	for _, a := range res.Applied {
		kinds = append(kinds, string(a.Kind))
	}
	if got := strings.Join(kinds, " "); got != "datastore archive conduit lane insight gateway compute compute" {
		t.Fatalf("applied in order %s", got)
	}
	if got := partitionsOf(t); got != 12 {
		t.Fatalf("topic %s has %d partitions, want 12", topic, got)
	}
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("bucket %s: %v", bucket, err)
	}
	rows, err := store.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, r := range rows {
		recorded[r.Kind+"/"+r.Name] = r.Status == warehouse.CatalogApplied && r.Applied()
	}
	if !recorded["conduit/"+topic] || !recorded["archive/"+bucket] || !recorded["datastore/warehouse"] {
		t.Fatalf("catalog %v", recorded)
	}

	// The same blueprint again: nothing to do.
	res, err = provision(t, 12, false)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if res.Plan.HasChanges() || len(res.Applied) != 0 || !strings.Contains(res.Summary(), "No changes") {
		t.Fatalf("second run changed something:\n%s\n%s", res.PlanText, res.Summary())
	}

	// A dry run of a change changes nothing.
	res, err = provision(t, 24, true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !strings.Contains(res.PlanText, "particoes 12 → 24") || len(res.Applied) != 0 || partitionsOf(t) != 12 {
		t.Fatalf("dry run:\n%s\napplied %v", res.PlanText, res.Applied)
	}

	// Raising partitions to 24 adds them.
	res, err = provision(t, 24, false)
	if err != nil {
		t.Fatalf("raise to 24: %v", err)
	}
	if len(res.Applied) != 1 || res.Applied[0].Kind != blueprint.KindConduit {
		t.Fatalf("raise to 24 applied %+v", res.Applied)
	}
	if got := partitionsOf(t); got != 24 {
		t.Fatalf("after raising: %d partitions, want 24", got)
	}

	// Lowering to 6 is refused, with a message, and nothing changes.
	_, err = provision(t, 6, false)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != workflows.ErrTypePlanRefused {
		t.Fatalf("lower to 6: error %v, want a non-retryable %s", err, workflows.ErrTypePlanRefused)
	}
	if msg := err.Error(); !strings.Contains(msg, "conduit "+topic) || !strings.Contains(msg, "24 → 6") {
		t.Fatalf("lower to 6: message %q does not say what was refused", msg)
	}
	if got := partitionsOf(t); got != 24 {
		t.Fatalf("after the refusal: %d partitions, want 24", got)
	}

	// The nightly schedule exists: daily at 02:00, NightlyAggregation on batch-jobs.
	desc, err := tc.ScheduleClient().GetHandle(ctx, workflows.NightlyScheduleID).Describe(ctx)
	if err != nil {
		t.Fatalf("schedule %s: %v", workflows.NightlyScheduleID, err)
	}
	act, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.TaskQueue != workflows.BatchQueue || fmt.Sprint(act.Workflow) != "NightlyAggregation" {
		t.Fatalf("schedule action %#v", desc.Schedule.Action)
	}
	if desc.Schedule.Policy.Overlap != enums.SCHEDULE_OVERLAP_POLICY_SKIP || desc.Schedule.Policy.CatchupWindow != workflows.NightlyCatchupWindow {
		t.Fatalf("schedule policy %+v", desc.Schedule.Policy)
	}
	cal := desc.Schedule.Spec.Calendars
	if len(cal) != 1 || len(cal[0].Hour) != 1 || cal[0].Hour[0].Start != workflows.NightlyHour {
		t.Fatalf("schedule spec %+v", desc.Schedule.Spec)
	}
}

// TestProvisionCommand runs `pipeline provision` as a user does, against a
// worker registered through worker.Run on batch-jobs: a dry run prints the
// plan, an apply prints what it did, a refused plan exits 1 naming the
// resource.
func TestProvisionCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "pipeline")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/pipeline").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tc, err := worker.Dial(stack.TemporalAddress, "default", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	prov, err := activities.NewProvisioner(activities.ProvisionerConfig{
		Store: store, KafkaBrokers: stack.KafkaBrokers, S3: devstack.S3Client(stack.S3Endpoint, stack.Region, stack.AccessKeyID, stack.SecretAccessKey),
		S3Endpoint: stack.S3Endpoint, Temporal: tc,
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(wctx, worker.Config{Client: tc, Store: store, Provisioner: prov, Log: slog.New(slog.DiscardHandler)})
	}()
	defer func() { stopWorker(); <-done }()

	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	topic, bucket := "events-cli-"+suffix, "datalake-cli-"+suffix
	file := func(partitions int) string {
		var doc map[string]any
		_ = json.Unmarshal(provisionBlueprint(t, topic, bucket, partitions), &doc)
		doc["nome"] = "CLI test " + suffix
		b, _ := json.Marshal(doc)
		p := filepath.Join(t.TempDir(), "blueprint.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pipeline := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"provision", "--temporal-address", stack.TemporalAddress, "--timeout", "90s"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := pipeline("--dry-run", file(12))
	if err != nil || !strings.Contains(out, "+ create conduit "+topic) || !strings.Contains(out, "Dry run: nothing changed.") ||
		!strings.Contains(out, "provision-cli-test-"+suffix+"-dry-run") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = pipeline(file(12))
	if err != nil || !strings.Contains(out, "topic "+topic+": created; 12 partitions") || !strings.Contains(out, "Schedule nightly-aggregation:") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	t.Logf("pipeline provision:\n%s", out)
	out, err = pipeline(file(12))
	if err != nil || !strings.Contains(out, "No changes") {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	out, err = pipeline(file(6))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "conduit "+topic) || !strings.Contains(out, "12 → 6") {
		t.Fatalf("lowering to 6: %v\n%s", err, out)
	}
	t.Logf("pipeline provision (refused):\n%s", out)
}
