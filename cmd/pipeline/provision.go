package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/slo"
	"github.com/acme/pipeline/workflows"
)

func runProvision(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("provision", "[--dry-run] FILE")
	cfg.Register(fs)
	dry := fs.Bool("dry-run", false, "print the plan against the catalog and change nothing")
	zone := fs.String("schedule-zone", "", "IANA time zone of the marts: recorded in the warehouse, and the nightly-aggregation schedule's zone (empty: keep the recorded zone, UTC the first time)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the workflow (it keeps running after that)")
	shards := fs.Int("stream-shards", 0, "StreamCompaction workflows splitting the topic's partitions (default: one per 4 partitions, at most the worker's replicas_max); a change reshards the running stream")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want exactly one blueprint file, got %d arguments", errUsage, fs.NArg())
	}
	// Validate here first: every problem at once, before Temporal is involved.
	path := fs.Arg(0)
	bp, err := blueprint.Load(path)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := cfg.Validate(config.NeedTemporal); err != nil {
		return err
	}
	tc, err := dialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tc.Close()

	res, err := provisionAndWait(ctx, tc, bp, raw, *dry, *zone, *shards, *timeout, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Println(res.PlanText)
	fmt.Print(res.Summary())
	return nil
}

// provisionFailure prints what the failed run had planned and applied (the
// failure's details) and returns its message, which names the resource.
func provisionFailure(id string, err error) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return fmt.Errorf("workflow %s: %w", id, err)
	}
	var res workflows.ProvisionResult
	if appErr.HasDetails() && appErr.Details(&res) == nil && res.PlanText != "" {
		fmt.Println(res.PlanText)
		if len(res.Applied) > 0 {
			fmt.Printf("Applied before the failure (recorded in the catalog; a rerun continues from here):\n")
			for _, a := range res.Applied {
				fmt.Printf("  %s %s: %s\n", a.Kind, a.Name, a.Detail)
			}
		}
		fmt.Println()
	}
	return fmt.Errorf("%s\n(workflow %s; its steps and retries: `temporal workflow show -w %s --detailed`)", appErr.Message(), id, id)
}

// provisionWorkflowID is provision-<slug of the blueprint's nome>, so two
// provisions of one blueprint cannot run at once; a dry run has its own id.
func provisionWorkflowID(name string, dry bool) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	slug := strings.TrimRight(b.String(), "-")
	if slug == "" {
		slug = "blueprint"
	}
	id := "provision-" + slug
	if dry {
		id += "-dry-run"
	}
	return id
}

// provisionAndWait starts the Provision workflow for a validated blueprint and
// waits for its result, telling out what it started. `pipeline provision` and
// `pipeline dev` both go through it.
// streamShards is how many StreamCompaction workflows split the topic's
// partitions: the flag when given, else one per 4 partitions, at most the
// worker's replicas_max (more shards than workers would only queue), at
// least 1. Each shard's cycle is one activity, so shards are the unit that
// spreads over worker processes.
func streamShards(bp *blueprint.Blueprint, flag int) int {
	if flag > 0 {
		return flag
	}
	_, parts, _ := bp.Topic()
	n := (parts + 3) / 4
	if _, w, ok := bp.Worker(); ok && w.ReplicasMax > 0 {
		n = min(n, w.ReplicasMax)
	}
	return max(1, min(n, parts))
}

func provisionAndWait(ctx context.Context, tc client.Client, bp *blueprint.Blueprint, raw []byte, dry bool, zone string, shards int, timeout time.Duration, out io.Writer) (workflows.ProvisionResult, error) {
	id := provisionWorkflowID(bp.Name, dry)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.BatchQueue},
		workflows.Provision, workflows.ProvisionInput{Blueprint: raw, DryRun: dry, ScheduleZone: zone})
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return workflows.ProvisionResult{}, fmt.Errorf("a Provision of blueprint %q is already running (workflow %s): wait for it, or see `temporal workflow describe -w %s`", bp.Name, id, id)
		}
		return workflows.ProvisionResult{}, fmt.Errorf("start Provision for %s: %w", bp.Source, err)
	}
	what := "Provisioning"
	if dry {
		what = "Planning (dry run)"
	}
	fmt.Fprintf(out, "%s blueprint %q: workflow %s run %s on task queue %s (a `pipeline worker` must be running).\n\n",
		what, bp.Name, run.GetID(), run.GetRunID(), workflows.BatchQueue)

	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res workflows.ProvisionResult
	err = run.Get(wctx, &res)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return workflows.ProvisionResult{}, fmt.Errorf("workflow %s still running after %s: is a `pipeline worker` polling %s? (`temporal workflow describe -w %s`)",
				run.GetID(), timeout, workflows.BatchQueue, run.GetID())
		}
		return workflows.ProvisionResult{}, provisionFailure(run.GetID(), err)
	}
	if !dry {
		// The live stream follows the provisioned topic; starting it again
		// finds the running shards and keeps them.
		topic, _, _ := bp.Topic()
		shards := streamShards(bp, shards)
		if _, err := workflows.StartStream(ctx, tc, workflows.StreamCompactionInput{Topic: topic, Shards: shards}); err != nil {
			return res, fmt.Errorf("start the stream workflows: %w", err)
		}
		ids := make([]string, shards)
		for i := range ids {
			ids[i] = workflows.StreamWorkflowID(topic, i, shards)
		}
		fmt.Fprintf(out, "Stream compaction running: %d shard(s) of topic %s on task queue %s: %s.\n",
			shards, topic, workflows.StreamQueue, strings.Join(ids, ", "))
		// The insight resource configures the SLO monitor: retention of its
		// measurements and whether alerts fire.
		if _, ins, ok := bp.Insight(); ok {
			cfg := slo.Config{Topic: topic, Alerts: ins.Alerts, RetentionDays: ins.RetentionDays}
			if _, err := workflows.StartSLOMonitor(ctx, tc, cfg); err != nil {
				return res, err
			}
			fmt.Fprintf(out, "SLO monitor running: workflow %s on task queue %s (every %s; alerts %v; measurements kept %d days).\n",
				workflows.SLOMonitorWorkflowID, workflows.BatchQueue, cfg.Defaults().Interval, ins.Alerts, cfg.Defaults().RetentionDays)
		}
	}
	return res, nil
}
