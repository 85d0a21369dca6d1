package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

// provisionBlueprint returns the seed blueprint with its own topic and bucket
// names (so the other tests' events topic and datalake bucket are left
// alone) and the conduit's particoes set to partitions.
func provisionBlueprint(t *testing.T, topic, bucket string, partitions int, retentionHours ...int) []byte {
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
			if len(retentionHours) > 0 {
				r["config"].(map[string]any)["retencao_horas"] = retentionHours[0]
			}
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
	h := startProvisionWorker(ctx, t)
	store, tc, s3c, suffix := h.store, h.tc, h.s3, h.suffix
	topic, bucket := "events-provision-"+suffix, "datalake-provision-"+suffix
	provision := func(t *testing.T, partitions int, dry bool) (workflows.ProvisionResult, error) {
		t.Helper()
		return h.provision(ctx, t, provisionBlueprint(t, topic, bucket, partitions), dry)
	}
	partitionsOf := func(t *testing.T) int { return partitionsOf(ctx, t, topic) }

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
	// The lake comes with the Iceberg table silver.events, whose catalog is
	// in the warehouse.
	if d := res.Applied[1].Detail; !strings.Contains(d, "Iceberg table silver.events at s3://") {
		t.Fatalf("archive applied without the silver table: %s", d)
	}
	cfg := *silverConfig()
	cfg.Bucket = bucket
	cat, err := silver.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := cat.Load(ctx); err != nil {
		t.Fatalf("silver.events after provisioning: %v", err)
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

	// A topic the catalog records but the broker no longer has (a new
	// broker behind the same warehouse) is planned as a create again.
	conn, err := kafka.DialContext(ctx, "tcp", stack.KafkaBrokers[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.DeleteTopics(topic); err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
	conn.Close()
	res, err = provision(t, 24, false)
	if err != nil {
		t.Fatalf("after the topic was deleted: %v", err)
	}
	if !strings.Contains(res.PlanText, "+ create conduit "+topic) || len(res.Applied) != 1 {
		t.Fatalf("after the topic was deleted, plan:\n%s\napplied %+v", res.PlanText, res.Applied)
	}
	if got := partitionsOf(t); got != 24 {
		t.Fatalf("recreated topic has %d partitions, want 24", got)
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
	t.Cleanup(store.Close) // after the worker stops (clean-ups run last in, first out)
	tc := dialTemporal(t)
	prov, err := activities.NewProvisioner(activities.ProvisionerConfig{
		Store: store, KafkaBrokers: stack.KafkaBrokers, S3: devstack.S3Client(stack.S3Endpoint, stack.Region, stack.AccessKeyID, stack.SecretAccessKey),
		S3Endpoint: stack.S3Endpoint,
	})
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, worker.Config{Client: tc, Store: store, Provisioner: prov})

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

// provisionHarness is a worker running Provision on a fresh task queue, with
// the clients a test checks the outcome with.
type provisionHarness struct {
	store  *warehouse.Store
	tc     client.Client
	s3     *s3.Client
	queue  string
	suffix string // unique per test run, for names
}

func startProvisionWorker(ctx context.Context, t *testing.T) *provisionHarness {
	t.Helper()
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	tc := dialTemporal(t)
	s3c := devstack.S3Client(stack.S3Endpoint, stack.Region, stack.AccessKeyID, stack.SecretAccessKey)
	prov, err := activities.NewProvisioner(activities.ProvisionerConfig{
		Store: store, KafkaBrokers: stack.KafkaBrokers, S3: s3c, S3Endpoint: stack.S3Endpoint, Silver: silverConfig(),
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
	ens, err := starter.NewEnsurer(tc)
	if err != nil {
		t.Fatal(err)
	}
	w.RegisterActivity(ens)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &provisionHarness{store: store, tc: tc, s3: s3c, queue: queue, suffix: suffix}
}

func (h *provisionHarness) provision(ctx context.Context, t *testing.T, bp []byte, dry bool) (workflows.ProvisionResult, error) {
	t.Helper()
	run, err := h.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "provision-test-" + h.suffix, TaskQueue: h.queue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.Provision, workflows.ProvisionInput{Blueprint: bp, DryRun: dry})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.ProvisionResult
	err = run.Get(ctx, &res)
	// Provision starts the stream and the SLO monitor; they must not outlive
	// the test in the shared Temporal server.
	t.Cleanup(func() {
		for _, id := range append(res.Stream, res.Monitor) {
			if id != "" {
				_ = h.tc.TerminateWorkflow(context.Background(), id, "", "test done")
			}
		}
	})
	return res, err
}

// partitionsOf asks a broker directly (no client metadata cache).
func partitionsOf(ctx context.Context, t *testing.T, topic string) int {
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

// retentionOf returns the topic's retention.ms.
func retentionOf(ctx context.Context, t *testing.T, topic string) string {
	t.Helper()
	kc := &kafka.Client{Addr: kafka.TCP(stack.KafkaBrokers...), Timeout: 10 * time.Second}
	resp, err := kc.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "retention.ms" {
				return e.ConfigValue
			}
		}
	}
	t.Fatalf("topic %s: no retention.ms", topic)
	return ""
}

// TestProvisionContinuesAfterFailure makes the conduit fail part-way (the
// topic already exists with more partitions than declared, which the catalog
// does not know), checks that the failure names the resource and that what
// was applied before is recorded, then fixes the blueprint and checks that
// the rerun applies only what is left.
func TestProvisionContinuesAfterFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := startProvisionWorker(ctx, t)
	topic, bucket := "events-resume-"+h.suffix, "datalake-resume-"+h.suffix
	if err := devstack.EnsureTopic(ctx, stack.KafkaBrokers, topic, 16, time.Hour); err != nil {
		t.Fatal(err)
	}

	_, err := h.provision(ctx, t, provisionBlueprint(t, topic, bucket, 12), false)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != activities.ErrTypeRefused {
		t.Fatalf("error %v, want a non-retryable %s", err, activities.ErrTypeRefused)
	}
	if msg := appErr.Message(); !strings.Contains(msg, "conduit "+topic+" (create) failed") || !strings.Contains(msg, "has 16 partitions") {
		t.Fatalf("message %q does not name the resource and the cause", msg)
	}
	var partial workflows.ProvisionResult
	if err := appErr.Details(&partial); err != nil {
		t.Fatal(err)
	}
	rows, err := h.store.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]warehouse.CatalogRow{}
	for _, r := range rows {
		byName[r.Kind+"/"+r.Name] = r
	}
	if r := byName["archive/"+bucket]; !r.Applied() {
		t.Fatalf("archive %s not recorded as applied before the failure: %+v", bucket, r)
	}
	if r := byName["conduit/"+topic]; r.Status != warehouse.CatalogFailed || r.Applied() || !strings.Contains(r.Error, "16 partitions") {
		t.Fatalf("conduit row %+v, want failed with its error", r)
	}

	// Fixed blueprint (and another retention): the archive is not redone.
	res, err := h.provision(ctx, t, provisionBlueprint(t, topic, bucket, 16, 48), false)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	var applied []string
	for _, a := range res.Applied {
		applied = append(applied, string(a.Kind)+"/"+a.Name)
		if a.Kind == blueprint.KindArchive {
			t.Fatalf("rerun applied the archive again:\n%s", res.PlanText)
		}
	}
	if len(applied) == 0 || applied[0] != "conduit/"+topic {
		t.Fatalf("rerun applied %v, want the conduit first:\n%s", applied, res.PlanText)
	}
	if got := retentionOf(ctx, t, topic); got != "172800000" {
		t.Fatalf("retention.ms %s, want 172800000 (48h)", got)
	}
	if got := partitionsOf(ctx, t, topic); got != 16 {
		t.Fatalf("%d partitions, want 16", got)
	}
	rows, err = h.store.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Kind == "conduit" && r.Name == topic && (r.Status != warehouse.CatalogApplied || r.Error != "") {
			t.Fatalf("conduit row after the rerun %+v", r)
		}
	}
}

// ensureSilver creates silver.events in the test stack's catalog when it
// is absent, as provisioning does, and returns the workers' configuration.
func ensureSilver(t *testing.T) silver.Config {
	t.Helper()
	cfg := *silverConfig()
	cfg.Bucket = stack.Bucket
	if _, _, err := silver.Provision(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// silverConfig is the test stack's Iceberg catalog and S3 (the bucket is
// set per use).
func silverConfig() *silver.Config {
	return &silver.Config{DatabaseURL: stack.DatabaseURL, Endpoint: stack.S3Endpoint, Region: stack.Region,
		AccessKeyID: stack.AccessKeyID, SecretAccessKey: stack.SecretAccessKey}
}
