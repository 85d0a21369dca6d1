package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/workflows"
)

// runMaintain is `pipeline maintain [--orphans]`: one SilverMaintenance
// run now, what the silver-maintenance (or, with --orphans, the
// silver-orphans) schedule runs, with its result printed.
func runMaintain(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("maintain", "[--orphans] [--retention 1h] [--retain-last 20] [flags]")
	cfg.Register(fs)
	orphans := fs.Bool("orphans", false, "delete orphan files only (what the daily silver-orphans schedule runs)")
	retention := fs.Duration("retention", 0, "time-travel window: snapshots younger are kept (default 1h)")
	lateness := fs.Duration("lateness", 0, "hours that ended less than this ago are not compacted (default 10m)")
	retainLast := fs.Int("retain-last", 0, "snapshots kept however old (default 20)")
	orphanAge := fs.Duration("orphan-age", 0, "unreferenced files older than this are deleted, with --orphans (default 24h)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *retention < 0 || *lateness < 0 || *orphanAge < 0 || *retainLast < 0 {
		return fmt.Errorf("%w: durations and --retain-last must not be negative", errUsage)
	}
	if err := cfg.ValidateFor("maintain"); err != nil {
		return err
	}
	tc, err := dialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tc.Close()
	run, err := starter.StartSilverMaintenance(ctx, tc, workflows.SilverMaintenanceInput{
		Orphans: *orphans, Retention: *retention, RetainLast: *retainLast, Lateness: *lateness, OrphanAge: *orphanAge})
	if err != nil {
		return err
	}
	fmt.Printf("SilverMaintenance started: workflow %s run %s\n", run.GetID(), run.GetRunID())
	var res workflows.SilverMaintenanceResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("workflow %s: %w", run.GetID(), err)
	}
	if c := res.Compaction; c != nil {
		fmt.Printf("compaction (hours before %s): %d commits, %d small files replaced by %d, %d bytes read",
			c.Before.Format("2006-01-02 15:04 MST"), len(c.Commits), c.Removed, c.Added, c.BytesRead)
		if c.More {
			fmt.Print("; more left for the next run")
		}
		fmt.Println()
	}
	if m := res.Manifests; m != nil {
		fmt.Printf("manifests: %d → %d\n", m.Before, m.After)
	}
	if e := res.Expiry; e != nil {
		fmt.Printf("snapshots: %d → %d (kept from %s)\n", e.Before, e.After, e.KeptFrom.Format("2006-01-02 15:04:05 MST"))
	}
	if o := res.Orphans; o != nil {
		fmt.Printf("orphan files deleted: %d (%d bytes)\n", o.Files, o.Bytes)
	}
	return nil
}
