package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/warehouse"
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
	if err := cfg.ValidateFor("provision"); err != nil {
		return err
	}
	switch {
	case cfg.DatabaseURL != "" && !*dry:
		if err := ownerSetup(ctx, cfg, os.Stdout); err != nil {
			return err
		}
	case cfg.DatabaseURL != "":
		warnPending(ctx, cfg, os.Stderr)
	}
	tc, err := dialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tc.Close()

	req := starter.ProvisionRequest{Name: bp.Name, Input: workflows.ProvisionInput{Blueprint: raw, DryRun: *dry, ScheduleZone: *zone, StreamShards: *shards}}
	res, err := provisionAndWait(ctx, tc, req, *timeout, os.Stdout)
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

// provisionAndWait starts the Provision workflow for a validated blueprint
// (it applies the resources, then starts the stream and the SLO monitor)
// and waits for its result, telling out what it started. `pipeline
// provision` and `pipeline dev` both go through it.
func provisionAndWait(ctx context.Context, tc client.Client, req starter.ProvisionRequest, timeout time.Duration, out io.Writer) (workflows.ProvisionResult, error) {
	run, err := starter.StartProvision(ctx, tc, req)
	if err != nil {
		return workflows.ProvisionResult{}, err
	}
	what := "Provisioning"
	if req.Input.DryRun {
		what = "Planning (dry run)"
	}
	fmt.Fprintf(out, "%s blueprint %q: workflow %s run %s on task queue %s (a `pipeline worker` must be running).\n\n",
		what, req.Name, run.GetID(), run.GetRunID(), workflows.BatchQueue)
	res, err := starter.WaitProvision(ctx, run, timeout)
	if err != nil {
		var still *starter.StillRunningError
		if errors.As(err, &still) {
			return res, err
		}
		return res, provisionFailure(run.GetID(), err)
	}
	return res, nil
}

// ownerSetup is what only the warehouse owner's role may do, run by the
// provisioning process that holds it before the workflow starts: the
// migrations (the process roles among them) and the Iceberg catalog's
// tables. The workers, with their own role, then find both in place.
func ownerSetup(ctx context.Context, cfg config.Config, out io.Writer) error {
	if err := warehouse.EnsureMigrated(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("migrate the warehouse (DATABASE_URL must be its owner's): %w", err)
	}
	if err := silver.CreateCatalogTables(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	fmt.Fprintln(out, "Warehouse: migrations and the Iceberg catalog's tables in place.")
	return nil
}

// warnPending says, before a dry run, that the warehouse has migrations
// pending: workers with their own role wait for them, so the dry run would
// wait for a worker that does not come.
func warnPending(ctx context.Context, cfg config.Config, out io.Writer) {
	store, err := warehouse.Open(ctx, warehouse.Config{URL: cfg.DatabaseURL})
	if err != nil {
		return
	}
	defer store.Close()
	pending, total, err := store.Pending(ctx)
	if err != nil {
		return
	}
	if pending > 0 {
		fmt.Fprintf(out, "Note: the warehouse has %d of %d migrations pending. A dry run applies none, and workers with their own role (pipeline_worker) wait for them before they poll: run `pipeline provision` without --dry-run first.\n", pending, total)
	}
}
